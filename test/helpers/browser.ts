/**
 * Headless Chromium for end-to-end tests, through playwright-core and the system's Chromium
 * (/usr/bin/chromium). Nothing is ever downloaded: playwright-core has no bundled browser and we
 * always pass `executablePath`.
 *
 * One browser process per test file (launched on first use), a fresh, isolated context (its own
 * cookies and storage) per test. Every browser and context is closed in an `after` hook and on
 * process exit, even when a test fails.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { REPO_ROOT } from './spawn-server.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];
export const SCREENSHOT_DIR = join(REPO_ROOT, 'test-artifacts', 'screenshots');

/** Fail fast (and well) on a short timeout: pages are served from 127.0.0.1. */
const DEFAULT_TIMEOUT_MS = 10_000;

const browsers = new Set<Browser>();
const contexts = new Set<BrowserContext>();
let shared: Promise<Browser> | undefined;

/** Launch a new headless Chromium (tracked; closed in `after`). Prefer {@link newContext}. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM_PATH} (apt-get install chromium); the e2e browser tests never download a browser`);
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS],
    headless: true,
    chromiumSandbox: false,
    timeout: 30_000,
    // The test runner's environment must not leak proxy settings into the browser.
    env: { ...process.env, http_proxy: '', https_proxy: '', HTTP_PROXY: '', HTTPS_PROXY: '' },
  });
  browsers.add(browser);
  browser.once('disconnected', () => browsers.delete(browser));
  return browser;
}

/** The browser shared by the tests of this file, launched on first use. */
export function sharedBrowser(): Promise<Browser> {
  shared ??= launchBrowser().catch((err: unknown) => {
    shared = undefined;
    throw err;
  });
  return shared;
}

/** A fresh browser context (no cookies, no storage) on the shared browser. */
export async function newContext(options: BrowserContextOptions = {}): Promise<BrowserContext> {
  const browser = await sharedBrowser();
  const context = await browser.newContext({ viewport: { width: 800, height: 720 }, locale: 'en-US', ...options });
  context.setDefaultTimeout(DEFAULT_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(DEFAULT_TIMEOUT_MS);
  contexts.add(context);
  context.once('close', () => contexts.delete(context));
  return context;
}

/** A fresh context with one page in it. */
export async function newPage(options: BrowserContextOptions = {}): Promise<{ context: BrowserContext; page: Page }> {
  const context = await newContext(options);
  return { context, page: await context.newPage() };
}

/**
 * Save a full-page screenshot as `test-artifacts/screenshots/<name>.png` (the directory is
 * git-ignored and created on demand). Returns the file's path.
 */
export async function screenshot(page: Page, name: string): Promise<string> {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new TypeError(`screenshot: bad name ${JSON.stringify(name)}`);
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Close every context and browser this process opened. */
export async function closeAllBrowsers(): Promise<void> {
  await Promise.allSettled([...contexts].map((c) => c.close()));
  contexts.clear();
  await Promise.allSettled([...browsers].map((b) => b.close()));
  browsers.clear();
  shared = undefined;
}

after(closeAllBrowsers);
// On an abrupt exit, playwright-core itself kills the browser processes it launched.
