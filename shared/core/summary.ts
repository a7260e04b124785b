/** Platform-neutral builder for a job summary (GitHub step summary, Azure uploadsummary, the HTML release report). */
import { type Chart, chartMermaid, chartSvg, chartTable } from '../report/charts';
import { escapeHtml } from './html';

export { escapeHtml } from './html';

export type Cell = string | number | boolean | null | undefined;

/**
 * Where a summary is read, which decides how charts are drawn: GitHub renders Mermaid fences in job summaries but
 * strips `data:` images and inline SVG; Azure DevOps build summaries document neither, so charts become tables;
 * the HTML release report draws inline SVG.
 */
export type SummaryFlavor = 'github' | 'azure-devops' | 'html';

type Part = string | { chart: Chart } | { html: string; markdown: string };

export class Summary {
  private readonly parts: Part[] = [];

  heading(text: string, level: 1 | 2 | 3 | 4 = 2): this {
    this.parts.push(`${'#'.repeat(level)} ${text}\n`);
    return this;
  }

  paragraph(text: string): this {
    this.parts.push(`${text}\n`);
    return this;
  }

  list(items: readonly string[]): this {
    this.parts.push(items.map((i) => `- ${i}`).join('\n') + '\n');
    return this;
  }

  /** A markdown table; numbers are printed as given, so format them before. */
  table(header: readonly string[], rows: readonly (readonly Cell[])[]): this {
    this.parts.push(markdownTable(header, rows));
    return this;
  }

  /** Two-column table of labelled values (instead of a table with an empty header row). */
  fields(rows: readonly (readonly [string, Cell])[], header: readonly [string, string] = ['field', 'value']): this {
    return this.table(
      header,
      rows.filter(([, v]) => v !== undefined && v !== null && v !== ''),
    );
  }

  code(text: string, language = ''): this {
    this.parts.push('```' + language + '\n' + text + '\n```\n');
    return this;
  }

  /** Collapsible section. */
  details(title: string, markdown: string): this {
    this.parts.push(`<details><summary>${escapeHtml(title)}</summary>\n\n${markdown}\n</details>\n`);
    return this;
  }

  /** A chart, drawn for the flavor the summary is rendered in (see `SummaryFlavor`). */
  chart(chart: Chart): this {
    this.parts.push({ chart });
    return this;
  }

  /** Content that differs by flavor: `html` in the HTML report (e.g. an embedded image gallery), `markdown` elsewhere. */
  rich(html: string, markdown: string): this {
    this.parts.push({ html, markdown });
    return this;
  }

  raw(markdown: string): this {
    this.parts.push(markdown);
    return this;
  }

  get isEmpty(): boolean {
    return this.parts.length === 0;
  }

  toMarkdown(flavor: SummaryFlavor = 'github'): string {
    return this.parts
      .map((p) => {
        if (typeof p === 'string') return p;
        if ('chart' in p) {
          if (flavor === 'html') return `<figure class="chart">${chartSvg(p.chart)}</figure>\n`;
          return flavor === 'github' ? chartMermaid(p.chart) : chartTable(p.chart);
        }
        return flavor === 'html' ? `${p.html.replace(/\n\s*\n/g, '\n')}\n` : p.markdown;
      })
      .join('\n');
  }
}

export function markdownTable(header: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const line = (cells: readonly Cell[]) => `| ${cells.map(formatCell).join(' | ')} |`;
  return [line(header), `| ${header.map(() => '---').join(' | ')} |`, ...rows.map(line)].join('\n') + '\n';
}

function formatCell(cell: Cell): string {
  if (cell === null || cell === undefined) return '';
  return String(cell).replace(/\|/g, '\\|').replace(/\r?\n/g, '<br>');
}

/** A byte count in the unit that keeps it readable: 812 B, 19.4 KiB, 3.2 MiB, 1.05 GiB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[u]}`;
}
