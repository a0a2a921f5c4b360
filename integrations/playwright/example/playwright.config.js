// The example of caddy-pace's Playwright fixture: an app behind
// `caddy pace`, on slow-4g, with a link per test, two workers at once.
//
//	npm ci && npx playwright test
//
// It starts caddy pace itself (webServer): `go run` of this repository's
// command, or the binary $CADDY_PACE names. It drives the Chromium at
// $CHROMIUM, default Debian's /usr/bin/chromium; drop launchOptions to use
// Playwright's own browsers.
import { defineConfig } from "@playwright/test";

const caddyPace = process.env.CADDY_PACE ?? "go run ../../../cmd/caddy-pace";

export default defineConfig({
  testDir: "./tests",
  fullyParallel: true,
  workers: 2,
  timeout: 60_000,
  forbidOnly: !!process.env.CI,
  reporter: [["list"]],
  globalSetup: "./global-setup.js",
  use: {
    baseURL: "http://localhost:8080",
    launchOptions: { executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium" },
    // The fixture's defaults, written out: caddy pace --admin's endpoint
    // and network, and the cookie its --share reads.
    paceOptions: { admin: "http://localhost:2019", network: "default", cookie: "pace_link" },
  },
  webServer: {
    command: `${caddyPace} pace --root site --preset slow-4g --share '{cookie.pace_link}' --admin localhost:2019 --listen localhost:8080`,
    url: "http://localhost:8080/",
    reuseExistingServer: !process.env.CI,
    timeout: 300_000,
    stdout: "pipe",
  },
});
