/**
 * Child processes (killed by PID on exit, on SIGINT/SIGTERM and on errors), free ports, readiness,
 * and what /proc tells about a server: CPU time (utime + stime), RSS and its peak (VmHWM, reset
 * through /proc/<pid>/clear_refs). Every figure covers the process and its descendants (a server
 * with worker processes counts whole).
 */
import { spawn, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';

const children = new Set();
let exiting = false;

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * Spawn a child and remember its PID; `pin` is a CPU list for taskset (exec'd, so the PID is the
 * program's own). stdout/stderr are collected (the last 64 KiB of each) for error reports.
 */
export function spawnChild(command, args, { pin, env, cwd, name, stdin = 'ignore' } = {}) {
  const [cmd, argv] = pin === undefined ? [command, args] : ['taskset', ['-c', String(pin), command, ...args]];
  const child = spawn(cmd, argv, { env, cwd, stdio: [stdin, 'pipe', 'pipe'] });
  const entry = { child, name: name ?? command, stdout: '', stderr: '', exited: false, code: undefined };
  const keep = (key) => (chunk) => {
    entry[key] = (entry[key] + chunk.toString()).slice(-65536);
  };
  child.stdout.on('data', keep('stdout'));
  child.stderr.on('data', keep('stderr'));
  entry.exit = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      entry.exited = true;
      entry.code = code ?? signal;
      children.delete(entry);
      resolve(entry.code);
    });
  });
  child.on('error', (err) => {
    entry.stderr += `\nspawn error: ${err.message}`;
  });
  children.add(entry);
  return entry;
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(entry, graceMs = 5000) {
  if (entry === undefined || entry.exited) return;
  const pid = entry.child.pid;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = new Promise((resolve) => setTimeout(resolve, graceMs, 'timeout'));
  if ((await Promise.race([entry.exit, timer])) === 'timeout') {
    for (const p of [...descendants(pid), pid]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await Promise.race([entry.exit, new Promise((r) => setTimeout(r, 2000))]);
  }
}

/** Kill every child still running, by PID (and their descendants), at once. Synchronous. */
export function killAllChildren() {
  for (const entry of children) {
    const pid = entry.child.pid;
    if (pid === undefined) continue;
    for (const p of [...descendants(pid), pid]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  children.clear();
}

/** Kill the children on exit, on SIGINT/SIGTERM/SIGHUP and on an uncaught error. */
export function installCleanup(onSignal) {
  process.on('exit', killAllChildren);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      if (exiting) return;
      exiting = true;
      process.stderr.write(`\n${signal}: stopping the targets and the load generator\n`);
      onSignal?.(signal);
      killAllChildren();
      process.exit(130);
    });
  }
  process.on('uncaughtException', (err) => {
    process.stderr.write(`\nbench: ${err?.stack ?? err}\n`);
    killAllChildren();
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`\nbench: ${err?.stack ?? err}\n`);
    killAllChildren();
    process.exit(1);
  });
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Poll `url` until it answers below 500 (or `timeoutMs` passes, or the child exits). */
export async function waitReady(url, entry, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    if (entry.exited) throw new Error(`${entry.name} exited (${entry.code}) before it was ready:\n${tail(entry)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status < 500) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = err.cause?.code ?? err.message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${entry.name} not ready at ${url} after ${timeoutMs / 1000} s (${last}):\n${tail(entry)}`);
}

export function tail(entry, n = 20) {
  const lines = `${entry.stdout}\n${entry.stderr}`.split('\n').filter((l) => l.trim() !== '');
  return lines.slice(-n).map((l) => `    ${l}`).join('\n');
}

/** PIDs of every descendant of `pid` (from the ppid field of /proc/<pid>/stat). */
export function descendants(pid) {
  const parentOf = new Map();
  let entries;
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parentOf.set(Number(name), Number(fields[1]));
    } catch {
      // exited meanwhile
    }
  }
  const out = [];
  const frontier = [pid];
  while (frontier.length > 0) {
    const parent = frontier.pop();
    for (const [child, ppid] of parentOf) {
      if (ppid === parent) {
        out.push(child);
        frontier.push(child);
      }
    }
  }
  return out;
}

function tree(pid) {
  return [pid, ...descendants(pid)];
}

/** utime + stime of the process tree, in microseconds. */
export function cpuMicros(pid) {
  let ticks = 0;
  for (const p of tree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[0] is field 3 (state): utime is field 14, stime field 15.
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited
    }
  }
  return (ticks * 1e6) / CLK_TCK;
}

/** utime + stime of one process (not its children), in microseconds; undefined when it is gone or unreadable. */
export function ownCpuMicros(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK;
  } catch {
    return undefined;
  }
}

function statusField(p, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${p}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

/** Resident set size of the tree, bytes. */
export function rssBytes(pid) {
  return tree(pid).reduce((sum, p) => sum + statusField(p, 'VmRSS'), 0);
}

/** Peak RSS (VmHWM) of the tree since the last reset, bytes. */
export function peakRssBytes(pid) {
  return tree(pid).reduce((sum, p) => sum + statusField(p, 'VmHWM'), 0);
}

/** Reset VmHWM to the current RSS (writing 5 to clear_refs). Returns false when not permitted. */
export function resetPeakRss(pid) {
  let ok = true;
  for (const p of tree(pid)) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, '5');
    } catch {
      ok = false;
    }
  }
  return ok;
}

/** CPU time of the whole machine from /proc/stat, microseconds: busy (all but idle and iowait) and total. */
export function machineMicros() {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
    // Steal (time the hypervisor gave this VM's virtual CPUs to someone else) is kept apart: it is
    // no process's work here, but it starves the server as surely as a busy neighbour.
    const busy = user + nice + system + irq + softirq;
    return { busy: (busy * 1e6) / CLK_TCK, steal: (steal * 1e6) / CLK_TCK, total: ((busy + steal + idle + iowait) * 1e6) / CLK_TCK };
  } catch {
    return undefined;
  }
}

export function hasTaskset() {
  try {
    execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
