// The default view, as progs_codec.render.render_orbit frames a scene (its first camera):
// centre the per-axis median of the anchors, radius the 95th percentile of their distances to
// it, distance so that this sphere fills 80% of a 45-degree field of view, 20 degrees above
// the horizon around the frame's up (-y for OpenCV axes, +y for OpenGL axes, +z for Z-up axes,
// spec 9.2).

export const DEFAULT_FOV = 45;
export const DEFAULT_ELEVATION = 20;

function median(values) {
  const s = Float64Array.from(values).sort();
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/** numpy's default (linear) quantile. */
function quantile(values, q) {
  const s = Float64Array.from(values).sort();
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** @returns {{center: number[], radius: number}} */
export function sceneSphere(positions) {
  const n = positions.length / 3;
  const center = [0, 1, 2].map((c) => median(Array.from({ length: n }, (_, i) => positions[3 * i + c])));
  const d = Array.from({ length: n }, (_, i) => Math.hypot(positions[3 * i] - center[0], positions[3 * i + 1] - center[1], positions[3 * i + 2] - center[2]));
  return { center, radius: Math.max(quantile(d, 0.95), 1e-6) };
}

export function framingDistance(radius, fovDeg = DEFAULT_FOV, fill = 0.8) {
  return radius / (fill * Math.sin(0.5 * fovDeg * Math.PI / 180));
}

function cross(a, b) { return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]; }
function unit(a) { const n = Math.hypot(...a); return a.map((v) => v / n); }

/**
 * The first camera of progs_codec.render.camera.orbit_cameras around `positions`.
 * @returns {{eye: number[], target: number[], up: number[], fov: number}} fov: horizontal, degrees
 */
/** The world's up of the frame's `convention` (3.1, 9.2): 0 OpenCV, 1 OpenGL, 2 Z-up. */
export function sceneUp(convention) {
  return convention === 2 ? [0, 0, 1] : convention === 1 ? [0, 1, 0] : [0, -1, 0];
}

export function defaultView(positions, convention = 0, { fov = DEFAULT_FOV, elevation = DEFAULT_ELEVATION } = {}) {
  const up = sceneUp(convention);
  const { center, radius } = sceneSphere(positions);
  const dist = framingDistance(radius, fov);
  const e1 = unit(cross(up, Math.abs(up[0]) < 0.9 ? [1, 0, 0] : [0, 0, 1]));
  const el = elevation * Math.PI / 180;
  const eye = [0, 1, 2].map((i) => center[i] + dist * (Math.cos(el) * e1[i] + Math.sin(el) * up[i]));
  return { eye, target: center, up, fov };
}
