import { formatBytes, Summary } from '../../shared/core/summary';

describe('Summary', () => {
  it('renders headings, escaped tables and lists as markdown', () => {
    const md = new Summary()
      .heading('Gate', 2)
      .table(
        ['class', 'AP'],
        [
          ['a|b', 0.5],
          ['multi\nline', null],
        ],
      )
      .list(['one'])
      .toMarkdown();
    expect(md).toBe('## Gate\n\n| class | AP |\n| --- | --- |\n| a\\|b | 0.5 |\n| multi<br>line |  |\n\n- one\n');
  });

  it('draws a chart for the flavor it is read in: Mermaid on GitHub, a table on Azure DevOps, inline SVG in HTML', () => {
    const s = new Summary().chart({
      kind: 'bar',
      title: 'Dice <per class>',
      category: 'class',
      categories: ['cell'],
      value: { label: 'dice', min: 0, max: 1 },
      series: [{ name: 'candidate', values: [0.8] }],
    });
    expect(s.toMarkdown('github')).toContain('```mermaid\n%%{init:');
    expect(s.toMarkdown('github')).toContain('  x-axis "class" ["cell"]\n  y-axis "dice" 0 --> 1\n  bar [0.8]\n```');
    expect(s.toMarkdown('azure-devops')).toBe(
      '**Dice <per class>**\n\n| class | candidate (dice) |\n| --- | --- |\n| cell | 0.8 ████████ |\n',
    );
    expect(s.toMarkdown('html')).toMatch(
      /^<figure class="chart"><svg xmlns="http:\/\/www.w3.org\/2000\/svg" class="chart" data-chart="bar"/,
    );
    for (const flavor of ['github', 'azure-devops', 'html'] as const) expect(s.toMarkdown(flavor)).not.toContain('data:');
  });

  it('keeps rich HTML for the report and markdown elsewhere, and prints sizes in readable units', () => {
    const s = new Summary().rich('<div>\n\n<img alt="x"></div>', 'see the artifact\n');
    expect(s.toMarkdown('html')).toBe('<div>\n<img alt="x"></div>\n');
    expect(s.toMarkdown('github')).toBe('see the artifact\n');
    expect([812, 19_400, 3.2 * 1048576, 1.05 * 1073741824].map(formatBytes)).toEqual(['812 B', '18.9 KiB', '3.20 MiB', '1.05 GiB']);
  });

  it('wraps details in a collapsible block', () => {
    expect(new Summary().details('Log', 'text').toMarkdown()).toBe('<details><summary>Log</summary>\n\ntext\n</details>\n');
    expect(new Summary().isEmpty).toBe(true);
  });
});
