// optimlab play: the page's entry point. It reads the catalogue (/api/surfaces,
// /api/optimizers), builds the four scenes, keeps the current scene in the URL and exposes
// `window.optimlabPlay` for the tests and the benchmark:
//   ready      a Promise, resolved once the first scene is painted
//   scene()    {name, query, state} of the scene on show
//   lastRuns() the runs the scene last painted (the API's answer)
//   timings    [{event, ms, scene}]: from a control's event to the animation frame after the
//              repaint that answers it ("input" for sliders; "map" for a basin map)
//   idle()     a Promise resolved when no request of the scene is in flight or waiting
//   settled()  idle(), then two animation frames: what the scene shows is painted
//   answer(), anatomy()  the scene's last API answers

import { getJSON } from "./api.js";
import { readOptimizers, readSurfaces } from "./catalogue.js";
import { setupCode } from "./code.js";
import { query } from "./url.js";
import { createEwma } from "./scenes/ewma.js";
import { createMaps } from "./scenes/maps.js";
import { createRace } from "./scenes/race.js";
import { createRegression } from "./scenes/regression.js";

const SCENES = ["regression", "ewma", "race", "maps"];
const DEFAULT_SCENE = "race";
const URL_EVERY_MS = 250; // browsers throttle history.replaceState beyond ~100 calls / 10 s

const timings = [];
let readyResolve;
let readyReject;
const ready = new Promise((resolve, reject) => {
  readyResolve = resolve;
  readyReject = reject;
});
ready.catch(() => {}); // a failed start is shown on the page; the promise still rejects
let current = null;
const scenes = new Map();
const loaded = new Set();
let paints = 0;

window.optimlabPlay = {
  ready,
  timings,
  scene: () => (current ? { name: current.name, query: location.search, state: current.state ? current.state() : null } : null),
  lastRuns: () => (current && current.lastRuns ? current.lastRuns() : null),
  idle: () => (current ? current.idle() : Promise.resolve()),
  settled: async () => {
    if (current) await current.idle();
    flushURL(); // a pending address update is written now: the address is part of the scene
    await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  },
  answer: () => (current && current.answer ? current.answer() : null),
  anatomy: () => (current && current.anatomy ? current.anatomy() : null),
  paints: () => paints,
  clearTimings: () => {
    timings.length = 0;
  },
};

function status(text) {
  document.getElementById("status").textContent = text;
}

let urlTimer = null;
function writeURL({ push = false } = {}) {
  if (!current) return;
  const search = query([["scene", current.name], ...current.params()]);
  if (push) {
    clearTimeout(urlTimer);
    urlTimer = null;
    history.pushState(null, "", search || location.pathname);
    return;
  }
  if (urlTimer) return;
  urlTimer = setTimeout(replaceURL, URL_EVERY_MS);
}

function replaceURL() {
  urlTimer = null;
  if (!current) return;
  const s = query([["scene", current.name], ...current.params()]);
  if (s !== location.search) history.replaceState(null, "", s || location.pathname);
}

/** Write a pending (throttled) address update at once. */
function flushURL() {
  if (!urlTimer) return;
  clearTimeout(urlTimer);
  replaceURL();
}

const code = setupCode();

const ctx = {
  /** The moment of a control's event, in performance.now()'s clock. */
  stamp(event) {
    const now = performance.now();
    const t = event && event.timeStamp > 0 && event.timeStamp <= now ? event.timeStamp : now;
    return { t, type: (event && event.type) || "input" };
  },
  /** Call after drawing the answer to `inputs`: records their times at the next frame. */
  painted(inputs, scene, event = null) {
    requestAnimationFrame(() => {
      const now = performance.now();
      for (const i of inputs) timings.push({ event: event || i.type, ms: now - i.t, scene });
      paints += 1;
      if (current && current.name === scene) readyResolve();
    });
  },
  changed: () => writeURL(),
  setCode: (text, what) => code.set(text, what),
  status,
};

function show(name, params, { push = false } = {}) {
  if (current) current.deactivate();
  const scene = scenes.get(name);
  if (params || !loaded.has(name)) {
    scene.load(params || new URLSearchParams());
    loaded.add(name);
  }
  current = scene;
  for (const n of SCENES) {
    document.getElementById(`scene-${n}`).hidden = n !== name;
    const tab = document.getElementById(`tab-${n}`);
    tab.setAttribute("aria-selected", n === name ? "true" : "false");
    tab.classList.toggle("active", n === name);
  }
  code.set(null, null);
  document.title = `optimlab play: ${document.getElementById(`tab-${name}`).textContent}`;
  scene.activate();
  writeURL({ push });
}

function fromURL() {
  const params = new URLSearchParams(location.search);
  let name = params.get("scene") || DEFAULT_SCENE;
  if (!SCENES.includes(name)) {
    status(`there is no scene "${name}"; showing the race (scenes: ${SCENES.join(", ")})`);
    name = DEFAULT_SCENE;
  }
  show(name, params);
}

async function boot() {
  const [surfaceDoc, optimizerDoc] = await Promise.all([getJSON("/api/surfaces"), getJSON("/api/optimizers")]);
  const catalogue = readOptimizers(optimizerDoc);
  const surfaces = readSurfaces(surfaceDoc);
  const shared = { ...ctx, catalogue, surfaces };
  const byName = { regression: createRegression, ewma: createEwma, race: createRace, maps: createMaps };
  for (const n of SCENES) scenes.set(n, byName[n](document.getElementById(`scene-${n}`), shared));
  for (const n of SCENES) {
    document.getElementById(`tab-${n}`).addEventListener("click", (event) => {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      if (!current || current.name !== n) show(n, null, { push: true });
    });
  }
  window.addEventListener("popstate", fromURL);
  fromURL();
}

boot().catch((error) => {
  status(`could not start: ${error.message} (is \`optimlab play\` still running?)`);
  readyReject(error);
});
