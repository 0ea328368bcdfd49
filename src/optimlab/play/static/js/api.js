// The page's only source of numbers: the JSON API of `optimlab play` (see GET /api).
// Requests of one kind go through a Channel: one request in flight at a time, newer inputs
// coalesce into the next request (latest wins), and a request that became stale is aborted.

/** A refused request: status 400 (or other), with the API's {error: {field, message}}. */
export class ApiError extends Error {
  constructor(status, field, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.field = field;
  }
}

async function decode(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new ApiError(response.status, error.field || null,
      error.message || `the server answered ${response.status} ${response.statusText}`);
  }
  return body;
}

/** GET a JSON document. */
export async function getJSON(path, signal) {
  return decode(await fetch(path, { signal, headers: { Accept: "application/json" } }));
}

/** POST `body` as JSON, returning the decoded answer (ApiError when refused). */
export async function postJSON(path, body, signal) {
  return decode(await fetch(path, {
    method: "POST",
    signal,
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  }));
}

export function isAbort(error) {
  return error && (error.name === "AbortError" || error.name === "Stale");
}

/**
 * One request in flight per channel. `send(body, inputs)` where `inputs` are the
 * performance.now() stamps of the input events the request answers: if a request is in
 * flight, the new body waits (replacing any older waiting body, whose inputs it inherits) and
 * goes out when the flight lands; the landed answer is still painted (it is a valid, slightly
 * older picture) unless `abortStale` is set, when the flight is aborted at once. `onAnswer(
 * answer, inputs, body)` paints; `onError(error, body)` shows a refusal.
 */
export class Channel {
  constructor(path, { onAnswer, onError, abortStale = false, staleAfterMs = 800 } = {}) {
    this.path = path;
    this.onAnswer = onAnswer;
    this.onError = onError;
    this.abortStale = abortStale;
    this.staleAfterMs = staleAfterMs;
    this.flight = null; // {controller, body, inputs, started}
    this.waiting = null; // {body, inputs}
    this.idleWaiters = [];
  }

  get busy() {
    return this.flight !== null || this.waiting !== null;
  }

  send(body, inputs = []) {
    const key = JSON.stringify(body);
    if (this.flight) {
      if (!this.waiting && this.flight.key === key) {
        this.flight.inputs.push(...inputs);
        return;
      }
      const older = this.waiting ? this.waiting.inputs : [];
      this.waiting = { body, key, inputs: older.concat(inputs) };
      const age = performance.now() - this.flight.started;
      if (this.abortStale || age > this.staleAfterMs) this.flight.controller.abort();
      return;
    }
    this.launch(body, key, inputs);
  }

  /** Drop what is waiting and abort what is in flight (a scene switch). */
  cancel() {
    this.waiting = null;
    if (this.flight) this.flight.controller.abort();
  }

  launch(body, key, inputs) {
    const controller = new AbortController();
    const flight = { controller, body, key, inputs: inputs.slice(), started: performance.now() };
    this.flight = flight;
    postJSON(this.path, body, controller.signal).then(
      (answer) => this.land(flight, answer, null),
      (error) => this.land(flight, null, error),
    );
  }

  land(flight, answer, error) {
    if (this.flight !== flight) return;
    this.flight = null;
    const next = this.waiting;
    this.waiting = null;
    if (next) {
      // the inputs answered by the landed flight move on to the newer request: only a
      // painted picture of the newest settings counts as their answer
      const inputs = flight.inputs.concat(next.inputs);
      if (!error && !this.abortStale) this.safely(() => this.onAnswer(answer, [], flight.body));
      this.launch(next.body, next.key, inputs);
      return;
    }
    if (error) {
      if (!isAbort(error)) this.safely(() => this.onError && this.onError(error, flight.body));
    } else {
      this.safely(() => this.onAnswer(answer, flight.inputs, flight.body));
    }
    if (!this.busy) this.idleWaiters.splice(0).forEach((resolve) => resolve());
  }

  safely(fn) {
    try {
      fn();
    } catch (error) {
      // a painting bug must not wedge the channel; show it where a user sees it
      const status = document.getElementById("status");
      if (status) status.textContent = `drawing failed: ${error.message}`;
      throw error;
    }
  }

  /** A promise that resolves when nothing is in flight or waiting. */
  idle() {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

const grids = new Map();

/** POST /api/grid, cached by request (a surface's contours are fetched once per page). A
 * refused request is not cached, so that a corrected expression is asked again. */
export function cachedGrid(body) {
  const key = JSON.stringify(body);
  if (!grids.has(key)) {
    const promise = postJSON("/api/grid", body);
    grids.set(key, promise);
    promise.catch(() => grids.delete(key));
    if (grids.size > 24) grids.delete(grids.keys().next().value);
  }
  return grids.get(key);
}

/** The one request of a single-request scene (regression, EWMA): each answer is taken by
 * `accept(answer, inputs)`, clears the scene's error box, offers its code, is drawn and timed;
 * a refusal is shown in the box. Returns {channel, request}; `request(inputs)` sends `body()`
 * while `isActive()`. */
export function sceneRequest(ctx, { path, scene, errorBox, codeLabel, body, isActive, accept, draw }) {
  const channel = new Channel(path, {
    onAnswer: (answer, inputs) => {
      accept(answer, inputs);
      errorBox.textContent = "";
      ctx.setCode(answer.code, codeLabel);
      draw();
      ctx.painted(inputs, scene);
    },
    onError: (error) => {
      errorBox.textContent = error.field ? `${error.field}: ${error.message}` : error.message;
      ctx.painted([], scene);
    },
  });
  const request = (inputs = []) => {
    if (!isActive()) return;
    channel.send(body(), inputs);
    ctx.changed();
  };
  return { channel, request };
}
