import { Summary } from '../../shared/core/summary';

describe('Summary', () => {
  it('renders headings, escaped tables and lists as markdown', () => {
    const md = new Summary().heading('Gate', 2).table(['class', 'AP'], [['a|b', 0.5], ['multi\nline', null]]).list(['one']).toMarkdown();
    expect(md).toBe('## Gate\n\n| class | AP |\n| --- | --- |\n| a\\|b | 0.5 |\n| multi<br>line |  |\n\n- one\n');
  });

  it('embeds images as data URIs so no external host is needed', () => {
    const md = new Summary().image('PR <curve>', { svg: '<svg/>' }).toMarkdown();
    expect(md).toBe(`<img alt="PR &lt;curve&gt;" src="data:image/svg+xml;base64,${Buffer.from('<svg/>').toString('base64')}">\n`);
  });

  it('wraps details in a collapsible block', () => {
    expect(new Summary().details('Log', 'text').toMarkdown()).toBe('<details><summary>Log</summary>\n\ntext\n</details>\n');
    expect(new Summary().isEmpty).toBe(true);
  });
});
