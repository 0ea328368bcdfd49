// What GET /api/optimizers and GET /api/surfaces describe, read into one shape the controls use.
// Accepts lists or name-keyed objects and the usual spellings of a range (low/high, min/max,
// range: [a, b]) so that the page follows the API's documentation rather than guessing values.

function entries(value) {
  if (!value) return [];
  if (Array.isArray(value)) return value;
  return Object.entries(value).map(([name, v]) => ({ name, ...(typeof v === "object" ? v : { value: v }) }));
}

function range(spec) {
  if (Array.isArray(spec.range)) return [spec.range[0], spec.range[1]];
  const low = spec.low ?? spec.min ?? spec.minimum ?? null;
  const high = spec.high ?? spec.max ?? spec.maximum ?? null;
  return [low, high];
}

function readParameter(spec) {
  const [low, high] = range(spec);
  const kind = spec.kind || spec.type || "float";
  const defaults = spec.default ?? spec.defaults ?? null;
  return {
    name: spec.name,
    label: spec.label || spec.name.replace(/_/g, " "),
    kind,
    low,
    high,
    log: Boolean(spec.log ?? spec.log_scale ?? spec.scale === "log"),
    step: spec.step ?? null,
    defaults, // a number/bool, or {preset: value}
    choices: spec.choices || spec.values || null,
  };
}

/** The default of a parameter under a preset (null where the preset requires a value). */
export function defaultOf(parameter, preset) {
  const d = parameter.defaults;
  if (d !== null && typeof d === "object" && !Array.isArray(d)) {
    const v = d[preset] ?? d.keras ?? Object.values(d)[0];
    return v === undefined ? null : v;
  }
  return d;
}

/** {presets, optimizers: Map(name -> {name, color, hyperparameters: [...]}), schedules} */
export function readOptimizers(doc) {
  const presets = entries(doc.presets).map((p) => (typeof p === "string" ? p : p.name));
  const optimizers = new Map();
  for (const o of entries(doc.optimizers)) {
    optimizers.set(o.name, {
      name: o.name,
      color: o.color || o.colour || "#555",
      description: o.description || o.title || "",
      hyperparameters: entries(o.hyperparameters || o.sliders || o.parameters).map(readParameter),
    });
  }
  const schedules = entries(doc.schedules).map((s) => ({
    name: typeof s === "string" ? s : s.name,
    description: s.description || "",
    arguments: entries(s.arguments || s.parameters).map(readParameter),
  }));
  return { presets: presets.length ? presets : ["keras", "torch", "optax"], optimizers, schedules };
}

/** Map(name -> surface) from GET /api/surfaces. */
export function readSurfaces(doc) {
  const map = new Map();
  for (const s of entries(doc.surfaces)) map.set(s.name, s);
  return map;
}
