// The scene in the URL's query string: `?scene=race&surface=rosenbrock&start=-1.2,1&...`.
// Numbers are written as JavaScript's shortest round-trip form, so a reload restores the
// exact values; commas, colons, semicolons and = inside values stay readable.

const SAFE = /[^A-Za-z0-9_.\-~,:;=*^()!]/g;

/** Encode one value for the query string (readable where the URL standard allows). */
export function encode(value) {
  return String(value).replace(SAFE, (c) => encodeURIComponent(c));
}

/** Build "?a=1&b=2&opt=...&opt=..." from [[key, value], ...] (repeated keys allowed). */
export function query(pairs) {
  const parts = pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => `${k}=${encode(v)}`);
  return parts.length ? `?${parts.join("&")}` : "";
}

export function numberList(text, count = null) {
  if (typeof text !== "string") return null;
  const values = text.split(",").map((t) => Number(t));
  if (values.some((v) => !Number.isFinite(v)) || (count !== null && values.length !== count)) return null;
  return values;
}

export function numberParam(params, key, fallback, { low = -Infinity, high = Infinity, int = false } = {}) {
  if (!params.has(key)) return fallback;
  const v = Number(params.get(key));
  if (!Number.isFinite(v) || v < low || v > high || (int && !Number.isInteger(v))) return fallback;
  return v;
}

export function boolParam(params, key, fallback) {
  if (!params.has(key)) return fallback;
  const v = params.get(key);
  return v === "1" || v === "true" || v === "on";
}

function parseValue(text) {
  if (text === "true" || text === "on") return true;
  if (text === "false" || text === "off") return false;
  const v = Number(text);
  return text !== "" && Number.isFinite(v) ? v : text;
}

/** "Adam,torch,learning_rate=0.01,beta_1=0.8,schedule=ExponentialDecay;decay_steps=100"
 * <-> {name, preset, hyperparameters, schedule: {name, arguments} | null} */
export function encodeOptimizer(o) {
  const parts = [o.name, o.preset];
  for (const [k, v] of Object.entries(o.hyperparameters)) parts.push(`${k}=${v}`);
  if (o.schedule) {
    const args = Object.entries(o.schedule.arguments).map(([k, v]) => `${k}=${v}`);
    parts.push(`schedule=${[o.schedule.name, ...args].join(";")}`);
  }
  return parts.join(",");
}

export function decodeOptimizer(text) {
  const [name, preset, ...rest] = text.split(",");
  const o = { name, preset: preset || "keras", hyperparameters: {}, schedule: null };
  for (const part of rest) {
    const at = part.indexOf("=");
    if (at < 0) continue;
    const key = part.slice(0, at);
    const value = part.slice(at + 1);
    if (key === "schedule") {
      const [sname, ...args] = value.split(";");
      const schedule = { name: sname, arguments: {} };
      for (const arg of args) {
        const eq = arg.indexOf("=");
        if (eq > 0) schedule.arguments[arg.slice(0, eq)] = parseValue(arg.slice(eq + 1));
      }
      o.schedule = schedule;
    } else {
      o.hyperparameters[key] = parseValue(value);
    }
  }
  return o;
}
