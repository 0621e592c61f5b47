// The view transform: world coordinates (where nodes live) to screen pixels.
// Immutable: every change returns a new Transform, so a gesture can keep the one it started from.

export const MIN_SCALE = 0.05;
export const MAX_SCALE = 4;

export class Transform {
  constructor(x = 0, y = 0, k = 1) {
    this.x = x;
    this.y = y;
    this.k = k;
    Object.freeze(this);
  }

  toScreen(wx, wy) {
    return [wx * this.k + this.x, wy * this.k + this.y];
  }

  toWorld(sx, sy) {
    return [(sx - this.x) / this.k, (sy - this.y) / this.k];
  }

  translate(dx, dy) {
    return new Transform(this.x + dx, this.y + dy, this.k);
  }

  // Scale by `factor` keeping the world point under screen point (sx, sy) where it is.
  zoomAt(sx, sy, factor) {
    const k = Math.min(MAX_SCALE, Math.max(MIN_SCALE, this.k * factor));
    const [wx, wy] = this.toWorld(sx, sy);
    return new Transform(sx - wx * k, sy - wy * k, k);
  }

  // The visible world rectangle [x0, y0, x1, y1] of a screen of width by height pixels.
  visibleWorld(width, height) {
    const [x0, y0] = this.toWorld(0, 0);
    const [x1, y1] = this.toWorld(width, height);
    return [x0, y0, x1, y1];
  }
}

// Return the transform that shows world rectangle `bounds` [x0, y0, x1, y1] centered in the screen.
export function fitTransform(bounds, width, height, margin = 40) {
  const [x0, y0, x1, y1] = bounds;
  const w = Math.max(1, x1 - x0);
  const h = Math.max(1, y1 - y0);
  const k = Math.min(1.5, Math.max(MIN_SCALE, Math.min((width - 2 * margin) / w, (height - 2 * margin) / h)));
  const x = (width - w * k) / 2 - x0 * k;
  const y = (height - h * k) / 2 - y0 * k;
  return new Transform(x, y, k);
}
