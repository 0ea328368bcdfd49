// Canvas drawing: a plot area with data <-> pixel transforms, contour maps from a grid the API
// computed, paths, arrows and line charts. Nothing here computes optimizer numbers: it maps
// numbers the API returned onto pixels.

const FONT = "12px system-ui, -apple-system, 'Segoe UI', sans-serif";

/** Size a canvas's backing store to its CSS box times devicePixelRatio; returns the 2-D
 * context scaled so that drawing uses CSS pixels, and the CSS width and height. */
export function fit(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth));
  const height = Math.max(1, Math.round(canvas.clientHeight));
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { ctx, width, height };
}

/** Redraw `draw()` whenever any of the canvases changes size. */
export function onResize(canvases, draw) {
  let pending = false;
  const observer = new ResizeObserver(() => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      draw();
    });
  });
  canvases.forEach((c) => observer.observe(c));
  return observer;
}

/** A rectangle of data coordinates [x0, x1] x [y0, y1] mapped onto a pixel box; y grows up. */
export class Frame {
  constructor(box, x0, x1, y0, y1, { logY = false } = {}) {
    this.box = box; // {left, top, width, height} in CSS pixels
    this.logY = logY;
    this.x0 = x0;
    this.x1 = x1;
    this.y0 = logY ? Math.log10(y0) : y0;
    this.y1 = logY ? Math.log10(y1) : y1;
  }
  px(x) {
    return this.box.left + ((x - this.x0) / (this.x1 - this.x0)) * this.box.width;
  }
  py(y) {
    const v = this.logY ? Math.log10(y) : y;
    return this.box.top + (1 - (v - this.y0) / (this.y1 - this.y0)) * this.box.height;
  }
  /** pixel -> data */
  dx(px) {
    return this.x0 + ((px - this.box.left) / this.box.width) * (this.x1 - this.x0);
  }
  dy(py) {
    const v = this.y0 + (1 - (py - this.box.top) / this.box.height) * (this.y1 - this.y0);
    return this.logY ? 10 ** v : v;
  }
  inside(px, py) {
    const b = this.box;
    return px >= b.left && px <= b.left + b.width && py >= b.top && py <= b.top + b.height;
  }
}

/** A square-ish map frame for a domain, keeping the aspect ratio of the data when asked. */
export function mapFrame(width, height, domain, margin = 6) {
  const [[x0, x1], [y0, y1]] = domain;
  const box = { left: margin, top: margin, width: width - 2 * margin, height: height - 2 * margin };
  return new Frame(box, x0, x1, y0, y1);
}

// a light sequential colour scale (low = pale yellow, high = deep blue), readable under paths
const STOPS = [
  [255, 255, 229], [247, 252, 185], [217, 240, 163], [173, 221, 142], [120, 198, 121],
  [65, 171, 93], [35, 132, 67], [0, 104, 55], [0, 69, 41],
];
const COOL = [
  [250, 250, 252], [222, 235, 247], [198, 219, 239], [158, 202, 225], [107, 174, 214],
  [66, 146, 198], [33, 113, 181], [8, 81, 156], [8, 48, 107],
];

export function colourAt(t, stops = COOL) {
  const u = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(u));
  const f = u - i;
  const a = stops[i];
  const b = stops[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}
export { STOPS as GREENS };

/** Rank-based levels of a grid z[i][j] (non-finite values left out): `count` values at the
 * quantiles (i/count)^2, denser near the bottom so that a valley floor shows its rings. */
export function quantileLevels(z, count = 14) {
  const values = [];
  for (const row of z) for (const v of row) if (v !== null && Number.isFinite(v)) values.push(v);
  values.sort((a, b) => a - b);
  if (!values.length) return { levels: [], sorted: values };
  const levels = [];
  for (let i = 1; i <= count; i++) {
    const q = (i / (count + 1)) ** 2;
    const v = values[Math.min(values.length - 1, Math.floor(q * values.length))];
    if (!levels.length || v > levels[levels.length - 1]) levels.push(v);
  }
  return { levels, sorted: values };
}

function rankOf(sorted, v) {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo / Math.max(1, sorted.length - 1);
}

/**
 * Paint a contour map of the grid {x, y, z} (z[i][j] = f(x[j], y[i])) into an offscreen canvas
 * of `width` x `height` CSS pixels under `frame`: a heat map coloured by rank and contour lines
 * (marching squares) at quantile levels. Returns the offscreen canvas.
 */
export function contourImage(grid, frame, width, height, { lines = 14, stops = COOL } = {}) {
  const ratio = window.devicePixelRatio || 1;
  const off = document.createElement("canvas");
  off.width = Math.round(width * ratio);
  off.height = Math.round(height * ratio);
  const ctx = off.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  const { x, y, z } = grid;
  const { levels, sorted } = quantileLevels(z, lines);
  // heat map: one small image, one pixel per grid cell, stretched (smoothed) onto the frame
  const nx = x.length;
  const ny = y.length;
  const cells = document.createElement("canvas");
  cells.width = nx;
  cells.height = ny;
  const cctx = cells.getContext("2d");
  const image = cctx.createImageData(nx, ny);
  for (let i = 0; i < ny; i++) {
    for (let j = 0; j < nx; j++) {
      const v = z[i][j];
      const k = ((ny - 1 - i) * nx + j) * 4;
      if (v === null || !Number.isFinite(v)) {
        image.data.set([200, 200, 200, 255], k);
        continue;
      }
      const [r, g, b] = colourAt(0.8 * Math.sqrt(rankOf(sorted, v)), stops);
      image.data.set([r, g, b, 255], k);
    }
  }
  cctx.putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  const left = frame.px(x[0]);
  const right = frame.px(x[nx - 1]);
  const top = frame.py(y[ny - 1]);
  const bottom = frame.py(y[0]);
  ctx.drawImage(cells, left, top, right - left, bottom - top);
  // contour lines
  ctx.lineWidth = 0.8;
  ctx.strokeStyle = "rgba(20, 30, 60, 0.35)";
  const X = x.map((v) => frame.px(v));
  const Y = y.map((v) => frame.py(v));
  for (const level of levels) {
    ctx.beginPath();
    marchingSquares(z, X, Y, level, ctx);
    ctx.stroke();
  }
  ctx.strokeStyle = "#889";
  ctx.lineWidth = 1;
  ctx.strokeRect(frame.box.left, frame.box.top, frame.box.width, frame.box.height);
  return off;
}

function finite(v) {
  return v !== null && Number.isFinite(v);
}

/** Append to the current path the segments of z = level (cell corners at X[j], Y[i]). */
export function marchingSquares(z, X, Y, level, ctx) {
  const ny = z.length;
  const nx = z[0].length;
  const lerp = (a, b, va, vb) => a + ((level - va) / (vb - va)) * (b - a);
  for (let i = 0; i < ny - 1; i++) {
    for (let j = 0; j < nx - 1; j++) {
      const a = z[i][j];
      const b = z[i][j + 1];
      const c = z[i + 1][j + 1];
      const d = z[i + 1][j];
      if (!(finite(a) && finite(b) && finite(c) && finite(d))) continue;
      const code = (a > level ? 1 : 0) | (b > level ? 2 : 0) | (c > level ? 4 : 0) | (d > level ? 8 : 0);
      if (code === 0 || code === 15) continue;
      const x0 = X[j];
      const x1 = X[j + 1];
      const y0 = Y[i];
      const y1 = Y[i + 1];
      const bottom = [lerp(x0, x1, a, b), y0];
      const right = [x1, lerp(y0, y1, b, c)];
      const top = [lerp(x0, x1, d, c), y1];
      const left = [x0, lerp(y0, y1, a, d)];
      const seg = (p, q) => {
        ctx.moveTo(p[0], p[1]);
        ctx.lineTo(q[0], q[1]);
      };
      switch (code) {
        case 1: case 14: seg(left, bottom); break;
        case 2: case 13: seg(bottom, right); break;
        case 3: case 12: seg(left, right); break;
        case 4: case 11: seg(top, right); break;
        case 6: case 9: seg(bottom, top); break;
        case 7: case 8: seg(left, top); break;
        case 5: seg(left, top); seg(bottom, right); break;
        case 10: seg(left, bottom); seg(top, right); break;
        default: break;
      }
    }
  }
}

/** Dash pattern for the n-th curve of one colour (0: solid). */
export function dashFor(n) {
  return [[], [7, 4], [2, 3], [9, 3, 2, 3]][n % 4];
}

/** Draw a path [[x, y], ...] up to index `upto` (inclusive) in `colour`, with a dot at its
 * last shown point and a ring at its start. */
export function drawPath(ctx, frame, path, upto, colour, { dash = [], width = 2, dot = true } = {}) {
  const end = Math.min(upto, path.length - 1);
  ctx.save();
  ctx.beginPath();
  ctx.rect(frame.box.left, frame.box.top, frame.box.width, frame.box.height);
  ctx.clip();
  ctx.strokeStyle = colour;
  ctx.lineWidth = width;
  ctx.lineJoin = "round";
  ctx.setLineDash(dash);
  ctx.beginPath();
  let open = false;
  for (let k = 0; k <= end; k++) {
    const p = path[k];
    if (!p || !finite(p[0]) || !finite(p[1])) {
      open = false;
      continue;
    }
    const px = frame.px(p[0]);
    const py = frame.py(p[1]);
    if (open) ctx.lineTo(px, py);
    else ctx.moveTo(px, py);
    open = true;
  }
  ctx.stroke();
  ctx.setLineDash([]);
  if (dot && path[end] && finite(path[end][0])) {
    ctx.fillStyle = colour;
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.arc(frame.px(path[end][0]), frame.py(path[end][1]), 4.5, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
  }
  ctx.restore();
}

/** A marker: "start" ring, "min" star, "cross". */
export function drawMarker(ctx, frame, point, kind, colour = "#111") {
  const x = frame.px(point[0]);
  const y = frame.py(point[1]);
  ctx.save();
  ctx.strokeStyle = colour;
  ctx.fillStyle = colour;
  ctx.lineWidth = 2;
  ctx.beginPath();
  if (kind === "start") {
    ctx.arc(x, y, 6, 0, 2 * Math.PI);
    ctx.fillStyle = "#fff";
    ctx.fill();
    ctx.stroke();
  } else if (kind === "min") {
    for (let i = 0; i < 10; i++) {
      const r = i % 2 ? 3 : 7;
      const a = -Math.PI / 2 + (i * Math.PI) / 5;
      const px = x + r * Math.cos(a);
      const py = y + r * Math.sin(a);
      if (i) ctx.lineTo(px, py);
      else ctx.moveTo(px, py);
    }
    ctx.closePath();
    ctx.fillStyle = "#fff";
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.stroke();
  } else {
    ctx.moveTo(x - 5, y - 5);
    ctx.lineTo(x + 5, y + 5);
    ctx.moveTo(x + 5, y - 5);
    ctx.lineTo(x - 5, y + 5);
    ctx.stroke();
  }
  ctx.restore();
}

/** An arrow between two pixel points with an optional label at its head. */
export function arrow(ctx, x0, y0, x1, y1, colour, label = "", width = 2.5) {
  const angle = Math.atan2(y1 - y0, x1 - x0);
  const head = 9;
  ctx.save();
  ctx.strokeStyle = colour;
  ctx.fillStyle = colour;
  ctx.lineWidth = width;
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1 - Math.cos(angle) * head * 0.6, y1 - Math.sin(angle) * head * 0.6);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x1 - head * Math.cos(angle - 0.4), y1 - head * Math.sin(angle - 0.4));
  ctx.lineTo(x1 - head * Math.cos(angle + 0.4), y1 - head * Math.sin(angle + 0.4));
  ctx.closePath();
  ctx.fill();
  if (label) {
    ctx.font = "bold " + FONT;
    ctx.lineWidth = 3;
    ctx.strokeStyle = "rgba(255,255,255,0.9)";
    const lx = x1 + Math.cos(angle) * 8 - 6;
    const ly = y1 + Math.sin(angle) * 12 + 4;
    ctx.strokeText(label, lx, ly);
    ctx.fillText(label, lx, ly);
  }
  ctx.restore();
}

/** A short human number: 3 significant digits, exponent form when tiny or huge. */
export function fmt(v, digits = 3) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (Number.isInteger(v) && a < 1e7) return String(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(digits - 1).replace("e+", "e");
  return String(Number(v.toPrecision(digits)));
}

function niceTicks(lo, hi, count = 5, integer = false) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const step0 = integer ? Math.max(1, span / count) : span / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) || mag * 10;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

/**
 * A line chart: series [{x: [...], y: [...], colour, dash, label, alpha}], with log y when
 * asked (non-positive and null values leave gaps). `marker` draws a vertical line at that x.
 * Returns the frame used (for hit-testing).
 */
export function lineChart(canvas, series, { logY = false, xLabel = "", yLabel = "", marker = null,
  xMin = null, xMax = null, band = null, integerX = false } = {}) {
  const { ctx, width, height } = fit(canvas);
  ctx.clearRect(0, 0, width, height);
  ctx.font = FONT;
  const ok = (v) => finite(v) && (!logY || v > 0);
  let x0 = Infinity;
  let x1 = -Infinity;
  let y0 = Infinity;
  let y1 = -Infinity;
  for (const s of series) {
    for (let i = 0; i < s.y.length; i++) {
      const xv = s.x[i];
      const yv = s.y[i];
      if (finite(xv)) {
        x0 = Math.min(x0, xv);
        x1 = Math.max(x1, xv);
      }
      if (ok(yv) && finite(xv)) {
        y0 = Math.min(y0, yv);
        y1 = Math.max(y1, yv);
      }
    }
  }
  if (xMin !== null) x0 = xMin;
  if (xMax !== null) x1 = xMax;
  if (!Number.isFinite(x0) || !Number.isFinite(y0)) {
    ctx.fillStyle = "#667";
    ctx.fillText("no finite values to show", 12, height / 2);
    return null;
  }
  if (x1 === x0) x1 = x0 + 1;
  if (logY) {
    y0 = Math.max(y0, y1 * 1e-16);
    if (y1 === y0) {
      y1 *= 10;
      y0 /= 10;
    }
    y0 = 10 ** Math.floor(Math.log10(y0));
    y1 = 10 ** Math.ceil(Math.log10(y1));
  } else {
    if (y1 === y0) {
      y1 += 1;
      y0 -= 1;
    }
    const pad = (y1 - y0) * 0.05;
    y0 -= pad;
    y1 += pad;
  }
  const box = { left: 52, top: 10, width: Math.max(10, width - 64), height: Math.max(10, height - 46) };
  const frame = new Frame(box, x0, x1, y0, y1, { logY });
  // grid and ticks
  ctx.strokeStyle = "#e3e6ee";
  ctx.fillStyle = "#556";
  ctx.lineWidth = 1;
  ctx.textAlign = "center";
  for (const t of niceTicks(x0, x1, Math.max(2, Math.floor(box.width / 80)), integerX)) {
    const px = frame.px(t);
    ctx.beginPath();
    ctx.moveTo(px, box.top);
    ctx.lineTo(px, box.top + box.height);
    ctx.stroke();
    ctx.fillText(fmt(t), px, box.top + box.height + 14);
  }
  ctx.textAlign = "right";
  const yTicks = logY ? decades(y0, y1) : niceTicks(y0, y1, 4);
  for (const t of yTicks) {
    const py = frame.py(t);
    ctx.beginPath();
    ctx.moveTo(box.left, py);
    ctx.lineTo(box.left + box.width, py);
    ctx.stroke();
    ctx.fillText(logY ? `1e${Math.round(Math.log10(t))}` : fmt(t), box.left - 5, py + 4);
  }
  ctx.textAlign = "center";
  if (xLabel) ctx.fillText(xLabel, box.left + box.width / 2, height - 4);
  if (yLabel) {
    ctx.save();
    ctx.translate(11, box.top + box.height / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(yLabel, 0, 0);
    ctx.restore();
  }
  ctx.save();
  ctx.beginPath();
  ctx.rect(box.left, box.top, box.width, box.height);
  ctx.clip();
  if (band) {
    ctx.fillStyle = band.colour || "rgba(230, 159, 0, 0.18)";
    const a = frame.px(band.from);
    const b = frame.px(band.to);
    ctx.fillRect(Math.min(a, b), box.top, Math.abs(b - a), box.height);
  }
  for (const s of series) {
    ctx.strokeStyle = s.colour;
    ctx.fillStyle = s.colour;
    ctx.globalAlpha = s.alpha ?? 1;
    ctx.lineWidth = s.width ?? 1.8;
    ctx.setLineDash(s.dash || []);
    if (s.dots) {
      for (let i = 0; i < s.y.length; i++) {
        if (!ok(s.y[i])) continue;
        ctx.beginPath();
        ctx.arc(frame.px(s.x[i]), frame.py(s.y[i]), s.dots, 0, 2 * Math.PI);
        ctx.fill();
      }
      continue;
    }
    ctx.beginPath();
    let open = false;
    for (let i = 0; i < s.y.length; i++) {
      if (!ok(s.y[i]) || !finite(s.x[i])) {
        open = false;
        continue;
      }
      const px = frame.px(s.x[i]);
      const py = frame.py(s.y[i]);
      if (open) ctx.lineTo(px, py);
      else ctx.moveTo(px, py);
      open = true;
    }
    ctx.stroke();
  }
  ctx.setLineDash([]);
  ctx.globalAlpha = 1;
  if (marker !== null) {
    ctx.strokeStyle = "#333";
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(frame.px(marker), box.top);
    ctx.lineTo(frame.px(marker), box.top + box.height);
    ctx.stroke();
    ctx.setLineDash([]);
  }
  ctx.restore();
  ctx.strokeStyle = "#99a";
  ctx.strokeRect(box.left, box.top, box.width, box.height);
  return frame;
}

function decades(y0, y1) {
  const a = Math.round(Math.log10(y0));
  const b = Math.round(Math.log10(y1));
  const every = Math.max(1, Math.ceil((b - a) / 5));
  const out = [];
  for (let e = a; e <= b; e += every) out.push(10 ** e);
  return out;
}
