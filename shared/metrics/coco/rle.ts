/**
 * COCO run-length masks, ported from cocoapi's maskApi.c so every count, box and IoU matches pycocotools.
 * A mask is h×w pixels in column-major order; `counts` alternates background/foreground runs, starting with
 * background (a leading 0 when the first pixel is foreground). IoU works on the runs, never on decoded pixels.
 */
export interface Rle {
  readonly h: number;
  readonly w: number;
  readonly counts: Uint32Array;
}

/** Decodes the COCO string encoding (rleFrString): LEB128-like, 6 bits a char from '0' (48), deltas from the run two back. */
let decodeScratch = new Uint32Array(1024);

export function rleFromString(s: string, h: number, w: number): Rle {
  const m = decodeIntoScratch(s);
  return { h, w, counts: decodeScratch.slice(0, m) };
}

/** Decodes into the shared scratch buffer (no allocation) and returns the number of runs. */
function decodeIntoScratch(s: string): number {
  if (decodeScratch.length < s.length) decodeScratch = new Uint32Array(Math.max(s.length, decodeScratch.length * 2));
  const cnts = decodeScratch;
  let m = 0;
  let p = 0;
  const n = s.length;
  while (p < n) {
    // up to 6 chars (30 bits) in int32 arithmetic; longer values continue in doubles
    let x = 0;
    let k = 0;
    let c = 0;
    do {
      if (p >= n) throw new RangeError('truncated RLE string');
      c = s.charCodeAt(p++) - 48;
      x |= (c & 0x1f) << (5 * k);
      k++;
    } while (c & 0x20 && k < 6);
    if (c & 0x20) {
      let v = x;
      let scale = 2 ** 30;
      do {
        if (p >= n) throw new RangeError('truncated RLE string');
        c = s.charCodeAt(p++) - 48;
        v += (c & 0x1f) * scale;
        scale *= 32;
      } while (c & 0x20);
      if (c & 0x10) v -= scale; // sign-extend, as `x |= -1 << 5*k`
      if (m > 2) v += cnts[m - 2];
      cnts[m++] = v >>> 0;
      continue;
    }
    if (c & 0x10) x |= -1 << (5 * k);
    if (m > 2) x += cnts[m - 2];
    cnts[m++] = x >>> 0; // (uint) cast: wraps modulo 2^32
  }
  return m;
}

/**
 * A compressed-RLE mask whose runs are decoded only when an IoU needs them. Loading needs just the area, the
 * tight box and the pixel total of each mask, which one decode into a reused buffer gives without keeping the
 * runs; most detections of a crowded image never overlap a ground truth of their category, so their runs are
 * never built (no allocation, nothing for the garbage collector).
 */
export class LazyRle implements Rle {
  /** Foreground pixels (rleArea). */
  readonly area: number;
  /** Sum of all runs (must be h*w). */
  readonly length: number;
  /** Tight box x, y, w, h (rleToBbox). */
  readonly box = new Float64Array(4);
  private decoded?: Uint32Array;

  /** Throws RangeError on a truncated string, as rleFromString does. */
  constructor(
    readonly h: number,
    readonly w: number,
    private readonly text: string,
  ) {
    const m = decodeIntoScratch(text);
    const c = decodeScratch;
    let length = 0;
    let area = 0;
    for (let j = 0; j < m; j++) {
      length += c[j];
      if (j & 1) area += c[j];
    }
    this.length = length;
    this.area = area >>> 0;
    bboxOfRuns(c, m, h, w, this.box, 0);
  }

  get counts(): Uint32Array {
    if (!this.decoded) this.decoded = decodeScratch.slice(0, decodeIntoScratch(this.text));
    return this.decoded;
  }
}

/** Encodes counts as the COCO string (rleToString). */
export function rleToString(r: Rle): string {
  const out: string[] = [];
  const c = r.counts;
  for (let i = 0; i < c.length; i++) {
    let x = c[i] - (i > 2 ? c[i - 2] : 0);
    let more = true;
    while (more) {
      let ch = ((x % 32) + 32) % 32;
      x = Math.floor(x / 32);
      more = ch & 0x10 ? x !== -1 : x !== 0;
      if (more) ch |= 0x20;
      out.push(String.fromCharCode(ch + 48));
    }
  }
  return out.join('');
}

export function rleFromCounts(counts: ArrayLike<number>, h: number, w: number): Rle {
  return { h, w, counts: Uint32Array.from(counts) };
}

/** Foreground pixel count (rleArea). */
export function rleArea(r: Rle): number {
  if (r instanceof LazyRle) return r.area;
  const c = r.counts;
  let a = 0;
  for (let j = 1; j < c.length; j += 2) a += c[j];
  return a >>> 0;
}

/** Sum of all runs: must equal h*w for a well-formed mask. */
export function rleLength(r: Rle): number {
  if (r instanceof LazyRle) return r.length;
  let s = 0;
  for (let j = 0; j < r.counts.length; j++) s += r.counts[j];
  return s;
}

/** Tight box [x, y, w, h] of the foreground (rleToBbox, current cocoapi version). */
export function rleToBbox(r: Rle): [number, number, number, number] {
  const out = new Float64Array(4);
  rleToBboxInto(r, out, 0);
  return [out[0], out[1], out[2], out[3]];
}

export function rleToBboxInto(r: Rle, bb: Float64Array, at: number): void {
  if (r instanceof LazyRle) {
    bb.set(r.box, at);
    return;
  }
  bboxOfRuns(r.counts, r.counts.length, r.h, r.w, bb, at);
}

/** rleToBbox over the first `len` runs of `cnts`. */
function bboxOfRuns(cnts: Uint32Array, len: number, h: number, w: number, bb: Float64Array, at: number): void {
  const m = Math.floor(len / 2) * 2;
  let xs = w,
    ys = h,
    xe = 0,
    ye = 0,
    cc = 0;
  if (m === 0) {
    bb[at] = bb[at + 1] = bb[at + 2] = bb[at + 3] = 0;
    return;
  }
  for (let j = 0; j < m; j++) {
    const start = cc;
    cc += cnts[j];
    if (j % 2 === 0 || cnts[j] === 0) continue;
    const yStart = start % h;
    const xStart = (start - yStart) / h;
    const yEnd = (cc - 1) % h;
    const xEnd = (cc - 1 - yEnd) / h;
    if (xStart < xs) xs = xStart;
    if (xEnd > xe) xe = xEnd;
    if (xStart < xEnd) {
      ys = 0;
      ye = h - 1;
    } else {
      if (yStart < ys) ys = yStart;
      if (yEnd > ye) ye = yEnd;
    }
  }
  // uint arithmetic in C: an all-background mask with m>0 wraps xe-xs+1; keep the same numbers.
  bb[at] = xs;
  bb[at + 2] = (xe - xs + 1) >>> 0;
  bb[at + 1] = ys;
  bb[at + 3] = (ye - ys + 1) >>> 0;
}

/** Union (or intersection) of masks of one size (rleMerge). Sizes that differ give an empty 0×0 mask, as in C. */
export function rleMerge(rles: readonly Rle[], intersect = false): Rle {
  const n = rles.length;
  if (n === 0) return { h: 0, w: 0, counts: new Uint32Array(0) };
  let h = rles[0].h;
  let w = rles[0].w;
  if (n === 1) return { h, w, counts: rles[0].counts.slice() };
  let cnts: Uint32Array = rles[0].counts.slice();
  let m = cnts.length;
  for (let i = 1; i < n; i++) {
    const B = rles[i];
    if (B.h !== h || B.w !== w) {
      h = w = m = 0;
      break;
    }
    const A = cnts.subarray(0, m);
    const out = new Uint32Array(A.length + B.counts.length + 1);
    let ca = A.length ? A[0] : 0;
    let cb = B.counts.length ? B.counts[0] : 0;
    let v = 0,
      va = 0,
      vb = 0;
    let a = 1,
      b = 1,
      cc = 0,
      ct = 1;
    m = 0;
    while (ct > 0) {
      const c = ca < cb ? ca : cb;
      cc += c;
      ct = 0;
      ca -= c;
      if (!ca && a < A.length) {
        ca = A[a++];
        va = va ? 0 : 1;
      }
      ct += ca;
      cb -= c;
      if (!cb && b < B.counts.length) {
        cb = B.counts[b++];
        vb = vb ? 0 : 1;
      }
      ct += cb;
      const vp = v;
      v = intersect ? va & vb : va | vb;
      if (v !== vp || ct === 0) {
        out[m++] = cc;
        cc = 0;
      }
    }
    cnts = out;
  }
  return { h, w, counts: cnts.slice(0, m) };
}

/**
 * Intersection over union of two masks of equal size, walking both run lists once (the inner loop of rleIou).
 * For a crowd ground truth the union is the detection's area.
 */
export function rleIou(dt: Rle, gt: Rle, crowd: boolean): number {
  const A = dt.counts;
  const B = gt.counts;
  const ka = A.length;
  const kb = B.length;
  let ca = ka ? A[0] : 0;
  let cb = kb ? B[0] : 0;
  let va = false,
    vb = false;
  let a = 1,
    b = 1,
    i = 0,
    u = 0,
    ct = 1;
  while (ct > 0) {
    const c = ca < cb ? ca : cb;
    if (va || vb) {
      u += c;
      if (va && vb) i += c;
    }
    ct = 0;
    ca -= c;
    if (!ca && a < ka) {
      ca = A[a++];
      va = !va;
    }
    ct += ca;
    cb -= c;
    if (!cb && b < kb) {
      cb = B[b++];
      vb = !vb;
    }
    ct += cb;
  }
  if (i === 0) u = 1;
  else if (crowd) u = rleArea(dt);
  return i / u;
}

/** Box IoU of one pair (bbIou); a crowd ground truth divides by the detection's area. */
export function bboxIou(
  d0: number,
  d1: number,
  d2: number,
  d3: number,
  g0: number,
  g1: number,
  g2: number,
  g3: number,
  crowd: boolean,
): number {
  const w = Math.min(d2 + d0, g2 + g0) - Math.max(d0, g0);
  if (w <= 0) return 0;
  const h = Math.min(d3 + d1, g3 + g1) - Math.max(d1, g1);
  if (h <= 0) return 0;
  const i = w * h;
  const da = d2 * d3;
  const u = crowd ? da : da + g2 * g3 - i;
  return i / u;
}

let polyScratch = new Int32Array(4096);
let polyScratchV = new Int32Array(4096);
let polyScratchX = new Int32Array(4096);
let polyScratchY = new Int32Array(4096);

/**
 * Rasterises one polygon [x0,y0,x1,y1,...] exactly as rleFrPoly: boundary traced at 5× resolution, then the
 * pixel columns it crosses are turned into run boundaries.
 */
export function rleFromPolygon(xy: ArrayLike<number>, h: number, w: number): Rle {
  const k = Math.floor(xy.length / 2);
  const scale = 5;
  const x = new Int32Array(k + 1);
  const y = new Int32Array(k + 1);
  for (let j = 0; j < k; j++) x[j] = (scale * xy[j * 2] + 0.5) | 0;
  x[k] = x[0];
  for (let j = 0; j < k; j++) y[j] = (scale * xy[j * 2 + 1] + 0.5) | 0;
  y[k] = y[0];
  let m = 0;
  for (let j = 0; j < k; j++) m += Math.max(Math.abs(x[j] - x[j + 1]), Math.abs(y[j] - y[j + 1])) + 1;
  // the traced boundary lives in reused buffers: polygons are rasterised by the thousand while loading
  if (polyScratch.length < m) polyScratch = new Int32Array(Math.max(m, polyScratch.length * 2));
  if (polyScratchV.length < m) polyScratchV = new Int32Array(polyScratch.length);
  const u = polyScratch;
  const v = polyScratchV;
  m = 0;
  for (let j = 0; j < k; j++) {
    let xs = x[j],
      xe = x[j + 1],
      ys = y[j],
      ye = y[j + 1];
    const dx = Math.abs(xe - xs);
    const dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      let t = xs;
      xs = xe;
      xe = t;
      t = ys;
      ys = ye;
      ye = t;
    }
    const s = dx >= dy ? (ye - ys) / dx : (xe - xs) / dy;
    if (dx >= dy) {
      for (let d = 0; d <= dx; d++) {
        const t = flip ? dx - d : d;
        u[m] = t + xs;
        v[m] = (ys + s * t + 0.5) | 0;
        m++;
      }
    } else {
      for (let d = 0; d <= dy; d++) {
        const t = flip ? dy - d : d;
        v[m] = t + ys;
        u[m] = (xs + s * t + 0.5) | 0;
        m++;
      }
    }
  }
  // points where the boundary crosses a pixel column, downsampled back to pixel coordinates
  const kk = m;
  if (polyScratchX.length < kk) polyScratchX = new Int32Array(polyScratch.length);
  if (polyScratchY.length < kk) polyScratchY = new Int32Array(polyScratch.length);
  const bx = polyScratchX;
  const by = polyScratchY;
  m = 0;
  for (let j = 1; j < kk; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j] < u[j - 1] ? u[j] : u[j] - 1;
    xd = (xd + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > w - 1) continue;
    let yd = v[j] < v[j - 1] ? v[j] : v[j - 1];
    yd = (yd + 0.5) / scale - 0.5;
    if (yd < 0) yd = 0;
    else if (yd > h) yd = h;
    yd = Math.ceil(yd);
    bx[m] = xd;
    by[m] = yd;
    m++;
  }
  const a = new Uint32Array(m + 1);
  for (let j = 0; j < m; j++) a[j] = (bx[j] * h + by[j]) >>> 0;
  a[m] = (h * w) >>> 0;
  const total = m + 1;
  a.sort();
  let prev = 0;
  for (let j = 0; j < total; j++) {
    const t = a[j];
    a[j] -= prev;
    prev = t;
  }
  const b = new Uint32Array(total);
  let j = 0;
  let n = 0;
  b[n++] = a[j++];
  while (j < total) {
    if (a[j] > 0) b[n++] = a[j++];
    else {
      j++;
      if (j < total) b[n - 1] += a[j++];
    }
  }
  return { h, w, counts: b.slice(0, n) };
}

/** Box [x, y, w, h] as a mask (rleFrBbox: the box's corners as a polygon). */
export function rleFromBbox(bb: ArrayLike<number>, h: number, w: number): Rle {
  const xs = bb[0],
    xe = xs + bb[2],
    ys = bb[1],
    ye = ys + bb[3];
  return rleFromPolygon([xs, ys, xs, ye, xe, ye, xe, ys], h, w);
}

/** Column-major binary mask to runs (rleEncode). */
export function rleEncode(mask: ArrayLike<number>, h: number, w: number): Rle {
  const a = h * w;
  const cnts: number[] = [];
  let p = 0;
  let c = 0;
  for (let j = 0; j < a; j++) {
    const v = mask[j] ? 1 : 0;
    if (v !== p) {
      cnts.push(c);
      c = 0;
      p = v;
    }
    c++;
  }
  cnts.push(c);
  return { h, w, counts: Uint32Array.from(cnts) };
}

/** Runs to a column-major 0/1 mask (rleDecode). */
export function rleDecode(r: Rle): Uint8Array {
  const out = new Uint8Array(r.h * r.w);
  let p = 0;
  let v = 0;
  for (let j = 0; j < r.counts.length; j++) {
    const end = Math.min(p + r.counts[j], out.length);
    if (v) out.fill(1, p, end);
    p += r.counts[j];
    v = v ? 0 : 1;
  }
  return out;
}
