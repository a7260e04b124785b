import * as fs from 'node:fs';
import * as path from 'node:path';
import MarkdownIt from 'markdown-it';
import { escapeHtml } from '../core/summary';

export interface ReportSection {
  /** The step that produced it, e.g. `gate-metrics`. */
  step: string;
  title: string;
  status: 'passed' | 'failed' | 'skipped';
  /** Seconds the step took. */
  seconds?: number;
  /** The step's job summary (markdown with inline SVG/PNG data URIs), as GitHub and Azure DevOps show it. */
  markdown: string;
  /** Key outputs shown at the top of the section. */
  outputs?: Record<string, string>;
}

export interface ReleaseReport {
  title: string;
  subtitle?: string;
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
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: left; }
th { background: #f6f8fa; }
img { max-width: 100%; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
pre { background: #f6f8fa; padding: 8px; overflow: auto; }
dl.outputs { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 8px 0 12px; }
dl.outputs dt { color: var(--muted); } dl.outputs dd { margin: 0; word-break: break-all; }
`;

/**
 * One self-contained HTML page for a release: every step's summary in pipeline order, styles inline and every
 * chart an inline data URI, so it opens offline and in private repositories' artifacts alike. No script runs.
 */
export function renderReleaseReport(report: ReleaseReport): string {
  const nav = report.sections.map((s, i) => `<a href="#s${i}"><span class="badge ${s.status}">${s.status}</span> ${escapeHtml(s.step)}</a>`).join('');
  const sections = report.sections
    .map((s, i) => {
      const outputs = s.outputs && Object.keys(s.outputs).length ? `<dl class="outputs">${Object.entries(s.outputs).map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(shorten(v))}</dd>`).join('')}</dl>` : '';
      const body = markdown.render(demoteHeadings(s.markdown));
      return `<section id="s${i}"><h2>${escapeHtml(s.title)} <span class="badge ${s.status}">${s.status}</span></h2><p class="meta">${escapeHtml(s.step)}${s.seconds !== undefined ? ` · ${s.seconds.toFixed(1)} s` : ''}</p>${outputs}${body}</section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>${escapeHtml(report.title)}</title><style>${STYLE}</style></head>
<body><header><h1>${escapeHtml(report.title)}</h1><p>${escapeHtml(report.subtitle ?? '')} · generated ${escapeHtml(report.generatedAt)}</p></header>
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

export function writeReleaseReport(file: string, report: ReleaseReport): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, renderReleaseReport(report));
  fs.renameSync(tmp, file);
}
