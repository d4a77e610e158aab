/**
 * From raw runs to the summary: medians per (mode, workload, target), ratios from the same run,
 * the issue's goals, and the markdown written to docs/performance.md and printed.
 */

/** A window in which something else kept this many cores busy is flagged (†). */
export const NOISY = 0.25;
/** Cores of hypervisor steal (median over the windows) from which a run is called contended. */
export const STOLEN = 0.1;

export function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Least-squares slope of y over x. */
export function slope(points) {
  const n = points.length;
  if (n < 2) return undefined;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? undefined : num / den;
}

/** One row per (mode, workload, target) with the valid runs' medians. */
export function summarize(runs, plan) {
  const rows = [];
  for (const mode of plan.modes) {
    for (const w of plan.workloads) {
      for (const t of w.targets) {
        const mine = runs.filter((r) => r.mode === mode && r.workload === w.name && r.target === t && r.phase === 'main');
        if (mine.length === 0) continue;
        const valid = mine.filter((r) => r.valid);
        const perRound = [];
        const noisyRounds = [];
        for (let round = 1; round <= plan.rounds; round++) {
          const run = mine.find((r) => r.round === round && !r.retried);
          perRound.push(run === undefined ? null : run.valid ? run.rps : null);
          noisyRounds.push(run !== undefined && (run.otherCpuUtilization ?? 0) >= NOISY);
        }
        rows.push({
          mode,
          workload: w.name,
          target: t,
          runs: mine.length,
          valid: valid.length,
          rps: median(valid.map((r) => r.rps)),
          perRound,
          noisyRounds,
          p50: median(valid.map((r) => r.latency.p50)),
          p99: median(valid.map((r) => r.latency.p99)),
          cpuPerRequest: median(valid.map((r) => r.cpuPerRequestUs)),
          cpuBusy: median(valid.map((r) => r.cpuUtilization)),
          loaderBusy: median(valid.map((r) => r.loaderCpuUtilization)),
          dbCpuPerRequest: median(valid.map((r) => r.dbCpuPerRequestUs)),
          dbBusy: median(valid.map((r) => r.dbCpuUtilization)),
          otherBusy: median(valid.map((r) => r.otherCpuUtilization)),
          otherBusyMax: valid.length === 0 ? undefined : Math.max(...valid.map((r) => r.otherCpuUtilization ?? 0)),
          peakRssMB: valid.length === 0 ? undefined : Math.max(...valid.map((r) => r.peakRssBytes / 2 ** 20)),
        });
      }
    }
  }
  return rows;
}

export function findRow(rows, mode, workload, target) {
  return rows.find((r) => r.mode === mode && r.workload === workload && r.target === target);
}

export function ratio(a, b) {
  return a === undefined || b === undefined || b === 0 ? undefined : a / b;
}

const n0 = (x) => (x === undefined || x === null ? '–' : Math.round(x).toLocaleString('en-US'));
const n1 = (x) => (x === undefined || x === null ? '–' : x.toFixed(1));
const n2 = (x) => (x === undefined || x === null ? '–' : x.toFixed(2));
const times = (x) => (x === undefined ? '–' : `${x.toFixed(2)}×`);

/** A markdown table; the first `left` columns are left-aligned, the rest (numbers) right-aligned. */
function table(header, rows, left = 2) {
  return [`| ${header.join(' | ')} |`, `| ${header.map((h, i) => (i < left ? '---' : '---:')).join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** The peers Portcullis is compared with, per workload (in this order). */
const PEER_COLUMNS = [
  ['oidc-provider', 'oidc-provider'],
  ['jmondi-es256', '@jmondi ES256'],
  ['jmondi-hs256', '@jmondi HS256'],
  ['limit', 'limit'],
  ['limit-coalesced', 'limit, coalesced'],
  ['floor', 'floor'],
];

export function evaluateGoals(rows, extra) {
  const mode = rows.some((r) => r.mode === 'pinned') ? 'pinned' : 'shared';
  const get = (w, t) => findRow(rows, mode, w, t);
  const goals = [];
  const add = (goal, value, pass, note) => goals.push({ goal, value, pass, note });
  const pc = get('cc-jwt', 'portcullis');
  const r = (t) => ratio(pc?.rps, get('cc-jwt', t)?.rps);
  add('client_credentials JWT ≥ 2.5× oidc-provider', times(r('oidc-provider')), r('oidc-provider') === undefined ? undefined : r('oidc-provider') >= 2.5);
  add('client_credentials JWT ≥ 2.5× @jmondi (ES256)', times(r('jmondi-es256')), r('jmondi-es256') === undefined ? undefined : r('jmondi-es256') >= 2.5);
  add('client_credentials JWT ≥ 0.9× the limit', times(r('limit')), r('limit') === undefined ? undefined : r('limit') >= 0.9);
  // Not a goal of issue 7: the limit writing its responses the way Portcullis does, so the ratio above is not read alone.
  if (r('limit-coalesced') !== undefined) add('(for reading the line above) client_credentials JWT ÷ the limit with coalesced writes', times(r('limit-coalesced')), undefined);
  add('client_credentials JWT ≤ 110 µs server CPU per request', pc?.cpuPerRequest === undefined ? '–' : `${n0(pc.cpuPerRequest)} µs`, pc?.cpuPerRequest === undefined ? undefined : pc.cpuPerRequest <= 110);
  const po = get('cc-opaque', 'portcullis');
  const ro = ratio(po?.rps, get('cc-opaque', 'oidc-provider')?.rps);
  add('client_credentials opaque (SQLite) ≥ 2.5× oidc-provider opaque (memory)', times(ro), ro === undefined ? undefined : ro >= 2.5);
  for (const [w, label] of [
    ['refresh', 'refresh_token rotation'],
    ['code', 'authorization_code redemption'],
  ]) {
    const row = get(w, 'portcullis');
    add(`${label} ≥ 3,000 req/s, p99 < 10 ms`, row === undefined ? '–' : `${n0(row.rps)} req/s, p99 ${n1(row.p99)} ms`, row?.rps === undefined ? undefined : row.rps >= 3000 && row.p99 < 10);
  }
  const mem = extra.memory;
  add(
    'RSS under sustained load < 150 MB and flat',
    mem === undefined ? 'not run (--memory)' : `peak ${n1(mem.peakMB)} MB, ${n2(mem.slopeMBPerMin)} MB/min (last half ${n2(mem.slopeSecondHalfMBPerMin)})`,
    mem === undefined ? undefined : mem.peakMB < 150 && Math.abs(mem.slopeSecondHalfMBPerMin ?? mem.slopeMBPerMin) < 1,
  );
  const growth = extra.growth;
  if (growth === undefined || growth.ratios.length === 0) add('1M refresh tokens: refresh and introspection within 1.5×', 'not run (--growth)', undefined);
  else {
    const mine = growth.ratios.filter((g) => g.mode === mode);
    const worst = (key) => Math.max(...mine.map((g) => g[key]).filter((x) => x !== undefined));
    const [p50, p99, rps] = [worst('p50Ratio'), worst('p99Ratio'), worst('slowdown')];
    add(
      `${n0(growth.rows)} refresh tokens (${STORAGE_NAMES[growth.storage] ?? growth.storage}): refresh and introspection latency within 1.5×`,
      `worst p50 ${times(p50)}, p99 ${times(p99)}; req/s ${times(rps)} lower`,
      Number.isFinite(p50) && Number.isFinite(p99) ? p50 <= 1.5 && p99 <= 1.5 : undefined,
    );
  }
  const workers = extra.workers;
  add(
    '--workers: req/s from 1 to 2 workers',
    workers?.supported ? `${times(workers.scaling)}` : workers !== undefined ? 'skipped: the server has no --workers yet' : 'not run (--workers N)',
    undefined,
  );
  return { mode, goals };
}

export function markdown({ meta, plan, rows, runs, extra, goals }) {
  const out = [];
  const smoke = plan.duration < 10 || plan.rounds < 3;
  out.push(`Run of ${meta.date} on ${meta.machine.cpu} (${meta.machine.nproc} cores${meta.machine.memory ? `, ${meta.machine.memory}` : ''}), Node ${meta.machine.node}, ${meta.machine.os}.`);
  out.push(
    `${plan.connections} connections, ${plan.warmup} s warm-up (discarded), ${plan.duration} s measured, ${plan.rounds} round${plan.rounds === 1 ? '' : 's'}; ` +
      `Portcullis ${meta.portcullis.commit}${meta.portcullis.dirty ? ' (with uncommitted changes)' : ''}; ${meta.peers.map((p) => `${p.name} ${p.version}`).join(', ')}.`,
  );
  if (meta.idleCheck !== undefined && meta.idleCheck.otherCores >= NOISY) {
    out.push('', `**The machine was not idle when the run started: ${n2(meta.idleCheck.otherCores)} cores busy with other work.**`);
  }
  const steals = runs.filter((r) => r.valid && r.stealCores !== undefined).map((r) => r.stealCores);
  if (median(steals) >= STOLEN) {
    out.push(
      '',
      `**The hypervisor took a median of ${n2(median(steals))} cores (at most ${n2(Math.max(...steals))}) from this VM during the measured windows (steal in /proc/stat): ` +
        'a contended machine. Absolute figures (req/s, µs of CPU per request) are low and noisy; ratios between targets of this run still compare like with like.**',
    );
  }
  if (smoke) out.push('', `**Smoke run (${plan.duration} s × ${plan.rounds} round${plan.rounds === 1 ? '' : 's'}): it shows the harness works, its numbers are only indicative.**`);
  for (const mode of plan.modes) {
    const modeRows = rows.filter((r) => r.mode === mode);
    if (modeRows.length === 0) continue;
    out.push('', `### ${mode === 'pinned' ? 'Pinned: server on core 0, load generator on core 1' : 'Shared: server and load generator unpinned'}`, '');
    const body = [];
    for (const w of plan.workloads) {
      const limitRps = findRow(rows, mode, w.name, 'limit')?.rps;
      for (const t of w.targets) {
        const r = findRow(rows, mode, w.name, t);
        if (r === undefined) continue;
        body.push([
          w.name,
          plan.labels[t] ?? t,
          `**${n0(r.rps)}**`,
          r.perRound.map((v, i) => `${n0(v)}${r.noisyRounds[i] ? '†' : ''}`).join(' / '),
          n2(r.p50),
          n2(r.p99),
          n0(r.cpuPerRequest),
          n2(r.cpuBusy),
          n0(r.peakRssMB),
          limitRps === undefined ? '' : times(ratio(r.rps, limitRps)),
        ]);
      }
    }
    out.push(table(['workload', 'target', 'req/s (median)', 'req/s per round', 'p50 ms', 'p99 ms', 'CPU µs/req', 'cores busy', 'peak RSS MB', '÷ limit'], body));
    const modeRuns = runs.filter((r) => r.mode === mode && r.valid && r.otherCpuUtilization !== undefined);
    if (modeRuns.length > 0) {
      const others = modeRuns.map((r) => r.otherCpuUtilization);
      const worst = modeRuns.reduce((a, b) => (b.otherCpuUtilization > a.otherCpuUtilization ? b : a));
      const loaded = modeRuns.filter((r) => r.loaderCpuUtilization >= 0.9).map((r) => `${r.workload}/${r.target}`);
      out.push(
        '',
        `*cores busy*: the server's CPU time over the window (1.00 = one core saturated). Anything else on the machine ` +
          `(other processes, kernel network work charged to neither side) kept a median of ${n2(median(others))} cores busy, ` +
          `at most ${n2(worst.otherCpuUtilization)} (round ${worst.round}, ${worst.workload}/${worst.target}); ` +
          `† marks the ${modeRuns.filter((r) => r.otherCpuUtilization >= NOISY).length} of ${modeRuns.length} windows where it was ${NOISY} cores or more.` +
          (modeRuns.some((r) => r.stealCores !== undefined) ? ` The hypervisor took (steal) a median of ${n2(median(modeRuns.map((r) => r.stealCores)))} cores.` : '') +
          (loaded.length > 0 ? ` The load generator was near one core (≥ 0.9) in ${[...new Set(loaded)].join(', ')}: there it, not the server, may be the limit.` : ''),
      );
    }

    const ratioRows = [];
    for (const w of plan.workloads) {
      const pc = findRow(rows, mode, w.name, 'portcullis');
      if (pc === undefined) continue;
      const cells = PEER_COLUMNS.map(([t]) => times(ratio(pc.rps, findRow(rows, mode, w.name, t)?.rps)));
      if (cells.every((c) => c === '–')) continue;
      ratioRows.push([w.name, ...cells]);
    }
    if (ratioRows.length > 0) {
      out.push('', 'Portcullis req/s divided by each peer\'s, medians of this run:', '');
      out.push(table(['Portcullis ÷', ...PEER_COLUMNS.map(([, l]) => l)], ratioRows, 1));
    }
  }

  if (extra.growth !== undefined && extra.growth.ratios.length > 0) {
    out.push('', `### Growth: ${n0(extra.growth.rows)} refresh tokens in the database`, '');
    out.push(`${growthMethod(extra.growth)} Same workloads, same run, interleaved.`, '');
    out.push(ratioTable(extra.growth));
  }

  if (extra.memory !== undefined) {
    const m = extra.memory;
    out.push('', `### Memory: ${m.seconds} s of ${m.workload} on Portcullis (${m.mode})`, '');
    out.push(
      `${n0(m.rps)} req/s; RSS sampled every second: start ${n1(m.startMB)} MB, peak ${n1(m.peakMB)} MB, end ${n1(m.endMB)} MB; ` +
        `slope ${n2(m.slopeMBPerMin)} MB/min over the run, ${n2(m.slopeSecondHalfMBPerMin)} MB/min over its second half${m.valid ? '' : ` (**run invalid: ${m.reason}**)`}.`,
    );
  }

  out.push('', '### Workers', '');
  if (extra.workers?.supported) {
    const w = extra.workers;
    out.push(`\`portcullis start --workers N\`, ${w.workload}, shared mode (a 2-core machine: the load generator competes with the workers):`, '');
    out.push(table(['workers', 'req/s (median)', 'CPU µs/req', 'peak RSS MB'], w.rows.map((r) => [String(r.workers), n0(r.rps), n0(r.cpuPerRequest), n0(r.peakRssMB)]), 1));
    out.push('', `Scaling from 1 to ${w.n} workers: ${times(w.scaling)}.`);
  } else {
    out.push(extra.workers?.reason ?? 'Not measured (run with --workers 2).');
  }

  out.push('', '### Goals of issue 7 (' + goals.mode + ' mode, ratios from this run)', '');
  out.push(table(['goal', 'this run', 'met'], goals.goals.map((g) => [g.goal, g.value, g.pass === undefined ? '–' : g.pass ? 'yes' : '**no**']), 3));

  const discarded = runs.filter((r) => !r.valid);
  const notes = [];
  for (const [name, lines] of Object.entries(extra.startupWarnings ?? {})) notes.push(`- ${name} printed at start: ${lines.map((l) => `"${l}"`).join(' ')}`);
  for (const s of extra.skipped) notes.push(`- skipped: ${s.target} / ${s.workload}${s.mode ? ` (${s.mode})` : ''}: ${String(s.reason).replace(/\s*\n\s*/g, ' ⏎ ')}`);
  const oneLine = (text) => String(text ?? '').replace(/\s*\n\s*/g, ' ⏎ ').slice(0, 400);
  for (const r of discarded) notes.push(`- discarded: ${r.mode} round ${r.round} ${r.workload} / ${r.target}: ${oneLine(r.reason)}`);
  out.push('', '### Verification, skipped and discarded runs', '');
  out.push(`Every target was verified before it was measured (${extra.verified} checks passed: a real token comes back, a wrong secret is refused; the floor checks nothing).`);
  if (notes.length > 0) out.push('', ...notes);
  else out.push('', 'No run was discarded.');
  return out.join('\n');
}

const STORAGE_NAMES = { sqlite: 'SQLite', postgres: 'PostgreSQL' };

function growthMethod(g) {
  return g.storage === 'postgres'
    ? `Written server-side (INSERT … SELECT … generate_series, copies of a refresh-token row and its grant written by the server) in ${n0(g.insertSeconds)} s, then VACUUM (ANALYZE)${g.checkpoint ? ' and CHECKPOINT' : ''}: ${n0(g.seconds)} s in all; artifacts + grants ${g.size}.`
    : `Written with better-sqlite3 in ${n0(g.seconds)} s (copies of a refresh-token row and its grant written by the server).`;
}

const verdict = (x) => (x === undefined ? '–' : x <= 1.5 ? 'yes' : '**no**');

function ratioTable(g) {
  return table(
    ['workload', 'mode', 'req/s ratio', 'p50 ratio', 'p99 ratio', 'p50 ≤ 1.5×', 'p99 ≤ 1.5×'],
    g.ratios.map((r) => [r.workload, r.mode, times(ratio(r.grownRps, r.emptyRps)), times(r.p50Ratio), times(r.p99Ratio), verdict(r.p50Ratio), verdict(r.p99Ratio)]),
  );
}

/** The storage-scale block of one backend (docs/performance.md, between the growth markers). */
export function growthMarkdown({ meta, plan, rows, runs, extra }) {
  const g = extra.growth;
  const out = [];
  const pg = extra.postgres;
  const backend = g.storage === 'postgres' ? `PostgreSQL ${pg?.version ?? ''}`.trim() : 'SQLite (better-sqlite3, WAL)';
  out.push(`### ${backend}`, '');
  out.push(
    `Run of ${meta.date} on ${meta.machine.cpu} (${meta.machine.nproc} cores${meta.machine.memory ? `, ${meta.machine.memory}` : ''}), Node ${meta.machine.node}, ${meta.machine.os}; ` +
      `Portcullis ${meta.portcullis.commit}${meta.portcullis.dirty ? ' (with uncommitted changes)' : ''}.` +
      (g.storage === 'postgres' && pg !== undefined
        ? ` PostgreSQL on the same machine (${pg.url}; shared_buffers ${pg.shared_buffers}, autovacuum ${pg.autovacuum}), schemas \`${pg.prefix}_*\`, dropped after the run.`
        : ''),
  );
  out.push('', `\`${meta.command}\``);
  out.push('', `${plan.connections} connections, ${plan.warmup} s warm-up (discarded), ${plan.duration} s measured, ${plan.rounds} round${plan.rounds === 1 ? '' : 's'}, ${plan.modes.join(' and ')} mode. ${growthMethod(g)} The grown database then held ${n0(g.refreshTokens)} refresh tokens.`);
  if (meta.idleCheck !== undefined) {
    out.push(
      '',
      `**Machine load:** before the run, ${n2(meta.idleCheck.otherCores)} cores were busy with other work${meta.idleCheck.loadavg ? ` (load average ${meta.idleCheck.loadavg.join(' / ')})` : ''}` +
        `${meta.idleCheck.otherCores >= NOISY ? ': **not idle**, the numbers are noisy' : ''}.`,
    );
  }
  const body = [];
  for (const r of g.ratios) {
    for (const [label, t] of [
      ['almost empty', 'portcullis'],
      [`+${n0(g.rows)}`, 'portcullis-1m'],
    ]) {
      const row = findRow(rows, r.mode, r.workload, t);
      if (row === undefined) continue;
      body.push([
        r.workload,
        r.mode,
        label,
        `**${n0(row.rps)}**`,
        row.perRound.map((v, i) => `${n0(v)}${row.noisyRounds[i] ? '†' : ''}`).join(' / '),
        n2(row.p50),
        n2(row.p99),
        n0(row.cpuPerRequest),
        n0(row.dbCpuPerRequest),
        `${n2(row.cpuBusy)} / ${n2(row.loaderBusy)} / ${n2(row.dbBusy)} / ${n2(row.otherBusy)}`,
      ]);
    }
  }
  out.push('');
  out.push(
    table(['workload', 'mode', 'database', 'req/s (median)', 'req/s per round', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'db CPU µs/req', 'cores busy: server / load / db / other'], body, 3),
  );
  out.push('', `Ratios, +${n0(g.rows)} ÷ almost empty (medians of the rounds):`, '');
  out.push(ratioTable(g));
  const mine = runs.filter((r) => r.phase === 'main' && r.valid && r.otherCpuUtilization !== undefined);
  if (mine.length > 0) {
    const others = mine.map((r) => r.otherCpuUtilization);
    out.push(
      '',
      `*cores busy* (medians of the rounds): the server process, the load generator, ${g.storage === 'postgres' ? "this server's PostgreSQL backends" : 'no separate database process (SQLite runs inside the server)'}, and anything else on the machine. ` +
        `*Other* had a median of ${n2(median(others))} cores, at most ${n2(Math.max(...others))}; † marks the ${mine.filter((r) => r.otherCpuUtilization >= NOISY).length} of ${mine.length} windows with ${NOISY} cores or more elsewhere.`,
    );
  }
  const discarded = runs.filter((r) => r.phase === 'main' && !r.valid);
  if (discarded.length > 0) out.push('', ...discarded.map((r) => `- discarded: ${r.mode} round ${r.round} ${r.workload} / ${r.target}: ${String(r.reason).replace(/\s*\n\s*/g, ' ⏎ ').slice(0, 300)}`));
  return out.join('\n');
}

/** A short plain-text table for the console. */
export function consoleTable(rows, plan) {
  const lines = [];
  for (const mode of plan.modes) {
    const modeRows = rows.filter((r) => r.mode === mode);
    if (modeRows.length === 0) continue;
    lines.push(`\n${mode}`);
    lines.push(`${'workload'.padEnd(18)}${'target'.padEnd(16)}${'req/s'.padStart(9)}${'p50'.padStart(8)}${'p99'.padStart(8)}${'µs/req'.padStart(8)}${'RSS MB'.padStart(8)}  rounds`);
    for (const r of modeRows) {
      lines.push(
        `${r.workload.padEnd(18)}${r.target.padEnd(16)}${n0(r.rps).padStart(9)}${n2(r.p50).padStart(8)}${n2(r.p99).padStart(8)}${n0(r.cpuPerRequest).padStart(8)}${n0(r.peakRssMB).padStart(8)}  ${r.perRound.map(n0).join(' / ')}`,
      );
    }
  }
  return lines.join('\n');
}
