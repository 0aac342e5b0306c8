import { defineConfig } from '@playwright/test';
import { chromiumLaunchOptions } from './e2e/chromium.js';

// Real-browser proofs run in Debian's Chromium: browsers cannot be downloaded here.
export default defineConfig({
  testDir: 'e2e',
  testMatch: '**/*.spec.ts',
  timeout: 60_000,
  // How long a web-first assertion keeps retrying; it ends as soon as the condition holds, so only a slow machine
  // ever waits longer than Playwright's 5 s default.
  expect: { timeout: 15_000 },
  workers: 1,
  fullyParallel: false,
  reporter: [['list']],
  use: { launchOptions: chromiumLaunchOptions() },
});
