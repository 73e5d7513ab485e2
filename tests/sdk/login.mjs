// Walks pushgate's PushAuthentication journey with the unmodified ForgeRock JavaScript SDK, as
// a login page would, and lets a test steer it (tests/sdk/test_forgerock_js_sdk.py).
//
//   [PAGE_ORIGIN=http://app.example] node login.mjs BASE_URL USERNAME PASSWORD [REALM_PATH]
//
// PAGE_ORIGIN puts the page on another origin than BASE_URL: fetch then makes a browser's CORS
// checks (below).
//
// stdout carries one JSON object a line: what the page would show (the QR URI, the recovery
// codes, the number to pick, the outcome). Where a person would decide, the driver prints a
// question and reads the answer, one JSON line on stdin. stderr carries every request and
// response, for the test to print when something goes wrong.
//
// Node is not a browser: the few globals the SDK reads (localStorage, sessionStorage,
// navigator) and a browser's cookie jar for `credentials: "include"` are shimmed here; the SDK
// itself is used as published.

import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";

const [base, username, password, realmPath = "root"] = process.argv.slice(2);
if (!base || !username || password === undefined) {
  process.stderr.write("usage: node login.mjs BASE_URL USERNAME PASSWORD [REALM_PATH]\n");
  process.exit(2);
}

// --- the browser shims -------------------------------------------------------------------------

class MemoryStorage {
  #items = new Map();
  get length() {
    return this.#items.size;
  }
  key(index) {
    return [...this.#items.keys()][index] ?? null;
  }
  getItem(key) {
    return this.#items.has(String(key)) ? this.#items.get(String(key)) : null;
  }
  setItem(key, value) {
    this.#items.set(String(key), String(value));
  }
  removeItem(key) {
    this.#items.delete(String(key));
  }
  clear() {
    this.#items.clear();
  }
}

// The test finds this agent in the push's context: the SDK's device profile reached the phone.
const USER_AGENT = `Mozilla/5.0 (X11; Linux x86_64) pushgate-sdk-test/${process.versions.node}`;
const LOCATION = { latitude: 48.8566, longitude: 2.3522 };

globalThis.localStorage = new MemoryStorage();
globalThis.sessionStorage = new MemoryStorage();
globalThis.navigator = {
  userAgent: USER_AGENT,
  platform: "Linux x86_64",
  language: "en-US",
  languages: ["en-US", "en"],
  vendor: "",
  cookieEnabled: true,
  hardwareConcurrency: 2,
  plugins: {},
  geolocation: {
    getCurrentPosition(success) {
      success({ coords: { ...LOCATION, accuracy: 10 } });
    },
  },
};

// A browser's cookie jar for one site: what Set-Cookie stored goes back with every request
// made with `credentials: "include"` (the SDK's login and logout requests).
const jar = new Map(); // name -> {value, path}
const nodeFetch = globalThis.fetch;

function cookieHeader(url) {
  const path = new URL(url).pathname;
  return [...jar]
    .filter(([, cookie]) => path.startsWith(cookie.path))
    .map(([name, cookie]) => `${name}=${cookie.value}`)
    .join("; ");
}

function storeCookies(response) {
  for (const line of response.headers.getSetCookie()) {
    const [pair, ...attributes] = line.split(";").map((part) => part.trim());
    const equals = pair.indexOf("=");
    const name = pair.slice(0, equals);
    const value = pair.slice(equals + 1);
    let path = "/";
    let gone = value === "";
    for (const attribute of attributes) {
      const [key, val = ""] = attribute.split("=");
      if (key.toLowerCase() === "path") path = val || "/";
      if (key.toLowerCase() === "max-age" && Number(val) <= 0) gone = true;
      if (key.toLowerCase() === "expires" && Date.parse(val) <= Date.now()) gone = true;
    }
    if (gone) jar.delete(name);
    else jar.set(name, { value, path });
  }
}

function log(entry) {
  process.stderr.write(JSON.stringify(entry) + "\n");
}

// With PAGE_ORIGIN set, the page runs on another origin than pushgate, and fetch does what a
// browser does then (the Fetch standard's CORS checks): a preflight for the SDK's JSON and
// custom headers, which must answer 2xx without a redirect and allow the origin with
// credentials and every header; and the answer itself must allow the origin too. A browser
// gives the page only "Failed to fetch" when a check fails; the reason goes to stderr here.
const PAGE_ORIGIN = process.env.PAGE_ORIGIN || "";
const SAFELISTED = new Set(["accept", "accept-language", "content-language"]);

function corsFailure(why) {
  log({ cors: why });
  return new TypeError(`Failed to fetch (CORS: ${why})`);
}

function allowsCredentials(response) {
  return (
    response.headers.get("access-control-allow-origin") === PAGE_ORIGIN &&
    response.headers.get("access-control-allow-credentials") === "true"
  );
}

async function preflight(url, method, headers) {
  const names = [...headers.keys()].filter((name) => !SAFELISTED.has(name)).sort();
  const request = {
    method: "OPTIONS",
    headers: {
      Origin: PAGE_ORIGIN,
      "Access-Control-Request-Method": method,
      "Access-Control-Request-Headers": names.join(","),
    },
    redirect: "manual",
  };
  log({ preflight: { url, headers: request.headers } });
  const response = await nodeFetch(url, request);
  log({
    preflightResponse: { status: response.status, headers: Object.fromEntries(response.headers) },
  });
  if (response.status < 200 || response.status > 299) {
    throw corsFailure(`the preflight of ${url} answered ${response.status}`);
  }
  if (!allowsCredentials(response)) {
    throw corsFailure(`the preflight of ${url} does not allow ${PAGE_ORIGIN} with credentials`);
  }
  const allowed = (response.headers.get("access-control-allow-headers") || "")
    .split(",")
    .map((name) => name.trim().toLowerCase());
  const missing = names.filter((name) => !allowed.includes(name));
  if (missing.length) throw corsFailure(`the preflight of ${url} does not allow ${missing}`);
}

globalThis.fetch = async (input, init = {}) => {
  const url = String(input);
  const method = init.method ?? "GET";
  const headers = new Headers(init.headers);
  if (PAGE_ORIGIN) {
    // Every SDK request needs one: its JSON Content-Type and its own headers are not
    // CORS-safelisted.
    if ([...headers.keys()].some((name) => !SAFELISTED.has(name))) {
      await preflight(url, method, headers);
    }
    headers.set("Origin", PAGE_ORIGIN);
  }
  if (init.credentials === "include" && jar.size > 0 && !headers.has("Cookie")) {
    headers.set("Cookie", cookieHeader(url));
  }
  log({
    request: { method, url, headers: Object.fromEntries(headers), body: init.body ?? null },
  });
  const started = Date.now();
  const response = await nodeFetch(url, { ...init, headers });
  const text = await response.clone().text();
  log({
    response: {
      status: response.status,
      ms: Date.now() - started,
      redirected: response.redirected ? response.url : false,
      headers: Object.fromEntries(response.headers),
      body: text.length > 4000 ? text.slice(0, 4000) + "..." : text,
    },
  });
  if (PAGE_ORIGIN && !allowsCredentials(response)) {
    throw corsFailure(`the answer from ${url} does not allow ${PAGE_ORIGIN} with credentials`);
  }
  storeCookies(response);
  return response;
};

// The SDK reads the globals above when it is loaded, so it is imported after them.
const {
  CallbackType,
  Config,
  FRAuth,
  FRDevice,
  FRQRCode,
  FRRecoveryCodes,
  SessionManager,
  StepType,
} = await import("@forgerock/javascript-sdk");

// --- talking to the test -----------------------------------------------------------------------

const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

function say(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

async function ask(event) {
  say(event);
  const { value, done } = await answers.next();
  if (done) throw new Error(`stdin closed while waiting for an answer to ${JSON.stringify(event)}`);
  return JSON.parse(value);
}

// --- the journey -------------------------------------------------------------------------------

Config.set({
  serverConfig: { baseUrl: base.endsWith("/") ? base : base + "/" },
  realmPath,
  tree: "PushAuthentication",
});

const of = (step, type) => step.getCallbacksOfType(type);

function hiddenValue(step, id) {
  const callback = of(step, CallbackType.HiddenValueCallback).find(
    (cb) => cb.getOutputByName("id", "") === id,
  );
  return callback ? callback.getOutputValue("value") : undefined;
}

let lastNumber = null; // the number last shown: a new one (a new push) is asked about again
let qrPolls = 0;

async function handle(step) {
  const names = of(step, CallbackType.NameCallback);
  const passwords = of(step, CallbackType.PasswordCallback);
  const polling = of(step, CallbackType.PollingWaitCallback);
  const confirmations = of(step, CallbackType.ConfirmationCallback);
  const profiles = of(step, CallbackType.DeviceProfileCallback);

  if (names.length === 1 && passwords.length === 1) {
    names[0].setName(username);
    passwords[0].setPassword(password);
    const prompts = [names[0].getPrompt(), passwords[0].getPrompt()];
    say({ credentials: { header: step.getHeader() ?? null, prompts } });
    return FRAuth.next(step);
  }
  if (profiles.length === 1) {
    const callback = profiles[0];
    const asked = {
      metadata: callback.isMetadataRequired(),
      location: callback.isLocationRequired(),
    };
    callback.setProfile(await new FRDevice().getProfile(asked));
    say({ deviceProfile: asked });
    return FRAuth.next(step);
  }
  if (FRQRCode.isQRCodeStep(step)) {
    const { uri, use, message } = FRQRCode.getQRCodeData(step);
    qrPolls += 1;
    const waitTime = polling.length ? polling[0].getWaitTime() : 0;
    say({ qr: uri, use, message, polls: qrPolls, waitTime });
    // The page shows the code and polls until the phone has registered.
    await sleep(waitTime);
    return FRAuth.next(step);
  }
  if (FRRecoveryCodes.isDisplayStep(step)) {
    say({
      recoveryCodes: FRRecoveryCodes.getCodes(step),
      deviceName: FRRecoveryCodes.getDeviceName(step),
    });
    return FRAuth.next(step);
  }
  if (polling.length === 1) {
    const wait = polling[0];
    const number = hiddenValue(step, "pushChallengeNumber");
    const exit = confirmations.length === 1 ? confirmations[0] : undefined;
    if ((number ?? "") !== lastNumber) {
      lastNumber = number ?? "";
      const answer = await ask({
        number: number ?? null,
        message: wait.getMessage(),
        waitTime: wait.getWaitTime(),
        exit: exit ? exit.getOptions() : [],
      });
      if (answer.exit) {
        exit.setOptionValue(answer.exit);
        return FRAuth.next(step);
      }
    } else {
      say({ stillWaiting: number ?? null }); // the same wait again: nothing answered it
    }
    await sleep(wait.getWaitTime());
    return FRAuth.next(step);
  }
  if (names.length === 1 && step.callbacks.length === 1) {
    const answer = await ask({ prompt: names[0].getPrompt() });
    names[0].setName(answer.value);
    return FRAuth.next(step);
  }
  if (confirmations.length === 1 && polling.length === 0) {
    const text = of(step, CallbackType.TextOutputCallback).map((cb) => cb.getMessage());
    const answer = await ask({ options: confirmations[0].getOptions(), message: text });
    confirmations[0].setOptionValue(answer.option);
    return FRAuth.next(step);
  }
  throw new Error(`a step this driver does not know: ${JSON.stringify(step.payload)}`);
}

async function main() {
  let step = await FRAuth.next();
  for (let steps = 0; steps < 200; steps += 1) {
    if (step.type === StepType.LoginSuccess) {
      // Logged in: the test says whether to log out, as a person might.
      const answer = await ask({
        tokenId: step.getSessionToken(),
        realm: step.getRealm(),
        successUrl: step.getSuccessUrl(),
        cookies: [...jar.keys()],
      });
      if (answer.logout) {
        const response = await SessionManager.logout();
        say({ loggedOut: response.status, cookies: [...jar.keys()] });
      }
      return;
    }
    if (step.type === StepType.LoginFailure) {
      say({
        failure: {
          code: step.getCode(),
          reason: step.getReason(),
          message: step.getMessage(),
          detail: step.getDetail() ?? null,
          authId: step.payload.authId ?? null,
        },
      });
      return;
    }
    step = await handle(step);
  }
  throw new Error("more than 200 steps: the journey does not end");
}

try {
  await main();
  process.exit(0);
} catch (error) {
  say({ error: String(error && error.stack ? error.stack : error) });
  process.exit(1);
}
