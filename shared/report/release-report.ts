import MarkdownIt from 'markdown-it';
import { escapeHtml } from '../core/html';
import { writeFileAtomicSync } from '../core/atomic-write';

export interface ReportSection {
  /** The step that produced it, e.g. `gate-metrics`. */
  step: string;
  title: string;
  status: 'passed' | 'failed' | 'skipped';
  /** Seconds the step took. */
  seconds?: number;
  /** The step's job summary rendered for HTML (summary flavor `html`: inline SVG charts, embedded galleries). */
  markdown: string;
  /** Key outputs shown at the top of the section. */
  outputs?: Record<string, string>;
}

export interface ReleaseReport {
  title: string;
  subtitle?: string;
  /** What the release is made of, shown at the top: commit, data fingerprint, model hashes... */
  provenance?: { label: string; value: string }[];
  generatedAt: string;
  sections: ReportSection[];
}

// Summaries hold trusted HTML from our own steps (<img>, <details>), so raw HTML is on.
const markdown = new MarkdownIt({ html: true, linkify: false });

const STYLE = `
:root { color-scheme: light; --ok: #1a7f37; --bad: #cf222e; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
header { background: #0d1117; color: #f0f6fc; padding: 24px 40px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #9198a1; }
nav { display: flex; flex-wrap: wrap; gap: 8px; padding: 16px 40px; background: #fff; border-bottom: 1px solid var(--line); }
nav a { text-decoration: none; color: inherit; padding: 4px 10px; border: 1px solid var(--line); border-radius: 999px; }
main { padding: 24px 40px; max-width: 1200px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 24px; margin-bottom: 20px; }
section > h2 { margin: 0 0 8px; font-size: 18px; display: flex; gap: 12px; align-items: center; }
.badge { font-size: 12px; font-weight: 600; padding: 2px 8px; border-radius: 999px; color: #fff; }
.passed { background: var(--ok); } .failed { background: var(--bad); } .skipped { background: var(--muted); }
.meta { color: var(--muted); font-size: 12px; }
section { overflow-wrap: anywhere; }
.table-wrap { max-width: 100%; overflow-x: auto; margin: 8px 0; }
table { border-collapse: collapse; max-width: 100%; }
th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
td code { word-break: break-all; }
th { background: #f6f8fa; }
img { max-width: 100%; }
figure.chart { margin: 12px 0; max-width: 100%; }
figure.chart svg { display: block; height: auto; }
dl.provenance { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 12px 0 0; font-size: 12px; }
dl.provenance dt { color: #9198a1; } dl.provenance dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 12px; margin: 8px 0; }
.gallery figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px; background: #fff; }
.gallery img { display: block; width: 100%; height: auto; image-rendering: pixelated; }
.gallery figcaption { font-size: 12px; color: var(--muted); margin-top: 4px; }
.legend-swatch { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 10px; vertical-align: middle; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
pre { background: #f6f8fa; padding: 8px; overflow: auto; }
dl.outputs { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 8px 0 12px; }
dl.outputs dt { color: var(--muted); } dl.outputs dd { margin: 0; word-break: break-all; }
`;

/**
 * One self-contained HTML page for a release: every step's summary in pipeline order, styles inline and every
 * chart inline SVG, so it opens offline and in private repositories' artifacts alike. No script runs.
 */
export function renderReleaseReport(report: ReleaseReport): string {
  const provenance = report.provenance?.length
    ? `<dl class="provenance">${report.provenance.map((p) => `<dt>${escapeHtml(p.label)}</dt><dd>${escapeHtml(p.value)}</dd>`).join('')}</dl>`
    : '';
  const nav = report.sections
    .map((s, i) => `<a href="#s${i}"><span class="badge ${s.status}">${s.status}</span> ${escapeHtml(s.step)}</a>`)
    .join('');
  const sections = report.sections
    .map((s, i) => {
      const outputs =
        s.outputs && Object.keys(s.outputs).length
          ? `<dl class="outputs">${Object.entries(s.outputs)
              .map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${renderValue(v)}</dd>`)
              .join('')}</dl>`
          : '';
      const body = tidyTables(markdown.render(demoteHeadings(s.markdown)));
      return `<section id="s${i}"><h2>${escapeHtml(s.title)} <span class="badge ${s.status}">${s.status}</span></h2><p class="meta">${escapeHtml(s.step)}${s.seconds !== undefined ? ` · ${s.seconds.toFixed(1)} s` : ''}</p>${outputs}${body}</section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>${escapeHtml(report.title)}</title><style>${STYLE}</style></head>
<body><header><h1>${escapeHtml(report.title)}</h1><p>${escapeHtml(report.subtitle ?? '')} · generated ${escapeHtml(report.generatedAt)}</p>${provenance}</header>
<nav>${nav}</nav><main>
${sections}
</main></body></html>
`;
}

/** Step summaries start at h2; inside a section they sit one level lower. */
function demoteHeadings(markdown: string): string {
  return markdown.replace(/^(#{1,5}) /gm, '#$1 ');
}

function shorten(value: string): string {
  return value.length > 300 ? `${value.slice(0, 297)}...` : value;
}

/**
 * A step output as people read it: JSON objects and arrays (outputs are strings on every platform) become small
 * tables instead of a raw dump; scalars stay text.
 */
function renderValue(value: string): string {
  let parsed: unknown;
  if (/^[[{]/.test(value.trim())) {
    try {
      parsed = JSON.parse(value);
    } catch {
      parsed = undefined;
    }
  }
  if (parsed !== undefined && typeof parsed === 'object' && parsed !== null) {
    const n = Array.isArray(parsed) ? `${parsed.length} entries` : `${Object.keys(parsed).length} fields`;
    return `<details><summary>${n}</summary>${valueTable(parsed, 0)}</details>`;
  }
  // Outputs carry full float precision for machines; people read five significant digits.
  if (/^-?\d+\.\d{6,}$/.test(value)) return escapeHtml(String(Number(Number(value).toPrecision(5))));
  return escapeHtml(shorten(value));
}

function scalar(v: unknown): string {
  if (typeof v === 'number') return escapeHtml(Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(5))));
  return escapeHtml(shorten(typeof v === 'string' ? v : (JSON.stringify(v) ?? '')));
}

function valueTable(v: unknown, depth: number): string {
  if (v === null || typeof v !== 'object') return scalar(v);
  if (depth >= 1 && !Array.isArray(v))
    return escapeHtml(
      shorten(
        Object.entries(v as Record<string, unknown>)
          .map(([k, x]) => `${k}: ${typeof x === 'object' && x !== null ? '…' : typeof x === 'number' ? scalar(x) : String(x)}`)
          .join(', '),
      ),
    );
  if (depth >= 1) return escapeHtml(`${(v as unknown[]).length} values`);
  const rows = Array.isArray(v) ? v : [v];
  const objects = rows.every((r) => r !== null && typeof r === 'object' && !Array.isArray(r));
  if (Array.isArray(v) && objects && rows.length > 0) {
    const keys = [...new Set(rows.flatMap((r) => Object.keys(r as object)))];
    const body = rows
      .slice(0, 20)
      .map((r) => `<tr>${keys.map((k) => `<td>${valueTable((r as Record<string, unknown>)[k], depth + 1)}</td>`).join('')}</tr>`)
      .join('');
    return `<div class="table-wrap"><table><thead><tr>${keys.map((k) => `<th>${escapeHtml(k)}</th>`).join('')}</tr></thead><tbody>${body}</tbody></table></div>`;
  }
  if (Array.isArray(v)) return escapeHtml(shorten(v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ')));
  const entries = Object.entries(v as Record<string, unknown>);
  return `<div class="table-wrap"><table><tbody>${entries.map(([k, x]) => `<tr><th>${escapeHtml(k)}</th><td>${valueTable(x, depth + 1)}</td></tr>`).join('')}</tbody></table></div>`;
}

/** Every table scrolls inside its own box instead of widening the card, and a header row with no text is dropped. */
function tidyTables(html: string): string {
  return html
    .replace(/<thead>\s*<tr>(?:\s*<th[^>]*>\s*<\/th>)+\s*<\/tr>\s*<\/thead>/g, '')
    .replace(/<table>/g, '<div class="table-wrap"><table>')
    .replace(/<\/table>/g, '</table></div>');
}

export function writeReleaseReport(file: string, report: ReleaseReport): void {
  writeFileAtomicSync(file, renderReleaseReport(report));
}
