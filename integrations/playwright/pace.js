// caddy-pace's Playwright fixture: every test gets a link of its own on a
// named network of caddy-pace, and changes it live through Caddy's admin
// API, without touching any other test's link.
//
//	// fixtures.js
//	import { test as base } from "@playwright/test";
//	import { withPace } from "./pace.js";
//	export const test = withPace(base);
//
//	// a spec
//	test("says when the network is gone", async ({ page, pace }) => {
//	  await page.goto("/");
//	  await pace.offline();             // this test's link only
//	  await expect(page.getByText("Offline")).toBeVisible();
//	  await pace.online();
//	});
//
// Caddy keys the network's links by a cookie (or a header) that this
// fixture sets on every test's browser context, with a key unique to the
// test:
//
//	caddy pace --to localhost:3000 --preset slow-4g --admin localhost:2019 --share '{cookie.pace_link}'
//
// Options (test.use({ paceOptions: { ... } }) or use: in the config):
//   admin    the admin endpoint, default http://localhost:2019 (or $PACE_ADMIN)
//   network  the network's name, default "default" (caddy pace's)
//   cookie   the cookie share reads, default "pace_link"
//   header   set this header instead of the cookie, e.g. "X-Pace-Link"
//            (on every request of the context: cross-origin ones too, which
//            then need a CORS preflight)
//   url      where the cookie is for, default the config's baseURL
//
// It needs nothing but @playwright/test, which it takes as withPace's
// argument, and Node 18 or later for fetch.

import { randomUUID } from "node:crypto";

const defaults = {
  admin: process.env.PACE_ADMIN ?? "http://localhost:2019",
  network: "default",
  cookie: "pace_link",
  header: undefined,
  url: undefined,
};

// withPace extends a Playwright test with the fixtures pace, paceKey and
// paceOptions, and gives every test's browser context its own link.
export function withPace(base) {
  return base.extend({
    paceOptions: [{}, { option: true }],

    // The key of the test's link: unique to the test, its retry and this run.
    paceKey: async ({}, use, testInfo) => {
      await use(`w${testInfo.workerIndex}-${testInfo.testId}-r${testInfo.retry}-${randomUUID().slice(0, 8)}`);
    },

    // Every browser context of the test carries the key, whether or not the
    // test asks for pace.
    context: async ({ context, paceKey, paceOptions, baseURL }, use) => {
      const options = { ...defaults, ...paceOptions };
      if (options.header) {
        await context.setExtraHTTPHeaders({ [options.header]: paceKey });
      } else {
        const url = options.url ?? baseURL;
        if (!url) {
          throw new Error("pace: set use.baseURL (or paceOptions.url): the cookie that names the test's link is for that site");
        }
        await context.addCookies([{ name: options.cookie, value: paceKey, url }]);
      }
      await use(context);
    },

    // The test's link, to change live. Its changes end with the test.
    pace: async ({ paceKey, paceOptions }, use) => {
      const link = new PaceLink({ ...defaults, ...paceOptions }, paceKey);
      await use(link);
      await link.reset();
    },
  });
}

// PaceLink is one test's link on a named network.
export class PaceLink {
  constructor(options, key) {
    this.key = key;
    this.options = options;
    this.changes = {};
  }

  // set changes the link: any of pace's options, values as in the config,
  // e.g. set({ preset: "3g" }) or set({ loss: "2%", rtt: "300ms" }).
  async set(change) {
    Object.assign(this.changes, change);
    return this.#call("PATCH", this.#link(), change);
  }

  // offline stops the link: its streams stall, new requests wait, and the
  // page's own timeouts fire. online brings it back.
  async offline() {
    return this.#call("PATCH", this.#link(), { preset: "offline" });
  }

  // online brings the link back as set() left it, or as the network is.
  async online() {
    await this.#call("DELETE", this.#link());
    if (Object.keys(this.changes).length > 0) {
      return this.#call("PATCH", this.#link(), this.changes);
    }
    return this.state();
  }

  // reset puts the link back on the network's conditions.
  async reset() {
    this.changes = {};
    return this.#call("DELETE", this.#link());
  }

  // state is what the admin API says of the link: its key, options,
  // streams in flight and bytes each way.
  async state() {
    return this.#call("GET", this.#link());
  }

  // network is what the admin API says of the whole network, every live
  // link included.
  async network() {
    return this.#call("GET", `/pace/networks/${encodeURIComponent(this.options.network)}`);
  }

  #link() {
    return `/pace/networks/${encodeURIComponent(this.options.network)}/links/${encodeURIComponent(this.key)}`;
  }

  async #call(method, path, body) {
    const admin = this.options.admin.replace(/\/$/, "");
    // Node's fetch sends Sec-Fetch-Mode: cors, for which Caddy's admin
    // endpoint wants an Origin it allows: its own.
    const res = await fetch(admin + path, {
      method,
      headers: { Origin: admin },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) {
      throw new Error(`pace: ${method} ${path}: ${res.status} ${text.trim()}`);
    }
    return JSON.parse(text);
  }
}
