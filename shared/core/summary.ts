/** Platform-neutral builder for a markdown job summary (GitHub step summary, Azure uploadsummary). */
export type Cell = string | number | boolean | null | undefined;

export class Summary {
  private readonly parts: string[] = [];

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
    const line = (cells: readonly Cell[]) => `| ${cells.map(formatCell).join(' | ')} |`;
    this.parts.push([line(header), `| ${header.map(() => '---').join(' | ')} |`, ...rows.map(line)].join('\n') + '\n');
    return this;
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

  /**
   * An image embedded as a data URI, so the summary needs no artifact store or external host
   * (private repositories and offline labs render it too).
   */
  image(alt: string, content: { svg: string } | { png: Buffer }): this {
    const uri = 'svg' in content ? `data:image/svg+xml;base64,${Buffer.from(content.svg).toString('base64')}` : `data:image/png;base64,${content.png.toString('base64')}`;
    this.parts.push(`<img alt="${escapeHtml(alt)}" src="${uri}">\n`);
    return this;
  }

  raw(markdown: string): this {
    this.parts.push(markdown);
    return this;
  }

  get isEmpty(): boolean {
    return this.parts.length === 0;
  }

  toMarkdown(): string {
    return this.parts.join('\n');
  }
}

function formatCell(cell: Cell): string {
  if (cell === null || cell === undefined) return '';
  return String(cell).replace(/\|/g, '\\|').replace(/\r?\n/g, '<br>');
}

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
