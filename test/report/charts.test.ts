import { type Chart, chartMermaid, chartSvg, chartTable, formatNumber, PALETTE, textBar } from '../../shared/report/charts';

const pr: Chart = {
  kind: 'line',
  title: 'PR <candidate & production>',
  x: { label: 'recall', min: 0, max: 1 },
  y: { label: 'precision', min: 0, max: 1 },
  series: [
    {
      name: 'candidate',
      color: PALETTE.candidate,
      points: [
        [0, 1],
        [0.5, 0.9],
        [1, 0],
      ],
    },
    {
      name: 'production',
      color: PALETTE.production,
      dashed: true,
      points: [
        [0, 0.5],
        [0.5, -1],
        [1, 0.2],
      ],
    },
  ],
};

const latency: Chart = {
  kind: 'latency',
  title: 'Latency',
  unit: 'ms',
  // p95 and p99 only 3% apart: their labels must still not overlap.
  series: [{ name: 'batch 1', percentiles: { p50: 2, p95: 6, p99: 6.2 }, histogram: { edges: [1, 2, 4, 8], counts: [10, 80, 10] } }],
};

const numbers = (svg: string, re: RegExp) => [...svg.matchAll(re)].map((m) => m.slice(1).map(Number));

describe('chart module', () => {
  it('draws a line chart with escaped title, both axis labels, and the legend under the plot, not on it', () => {
    const svg = chartSvg(pr);
    expect(svg).toContain('PR &lt;candidate &amp; production&gt;');
    expect(svg).toContain('class="x-label"');
    expect(svg).toContain('>recall</text>');
    expect(svg).toContain('>precision</text>');
    // Plot: x 60..584, y 30..290. (0,1) → (60,30), (1,0) → (584,290); the -1 precision is not drawn.
    expect(svg).toContain('<path d="M60 30 L322 56 L584 290" fill="none" stroke="#1f77b4" stroke-width="2"/>');
    expect(svg).toContain('<path d="M60 160 L584 238" fill="none" stroke="#ff7f0e" stroke-width="2" stroke-dasharray="6 4"/>');
    const [[legendY]] = numbers(svg, /<g transform="translate\(0 ([\d.]+)\)">/g);
    expect(legendY).toBeGreaterThan(290);
    expect(svg).toContain('width="100%" style="max-width:600px"');
    expect(svg).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });

  it('draws latency on a log axis with p50, p95 and p99 labelled apart', () => {
    const svg = chartSvg(latency);
    expect(svg).toContain('>latency (ms), log scale</text>');
    expect(svg).toContain('>share of runs (%)</text>');
    for (const tick of ['1', '2', '5']) expect(svg).toContain(`text-anchor="middle">${tick}</text>`);
    const labels = numbers(svg, /<text class="marker" x="([\d.]+)" y="([\d.]+)"/g);
    expect(labels).toHaveLength(3);
    // p95 and p99 are ~4 px apart on the axis; their labels go on different rows.
    const [p95, p99] = [labels[1], labels[2]];
    expect(Math.abs(p95[0] - p99[0])).toBeLessThan(10);
    expect(p95[1]).not.toBe(p99[1]);
    expect(svg).toContain('>p99 6.2</text>');
  });

  it('writes GitHub Mermaid: xychart-beta with titled axes, a palette and a legend line; pie for shares', () => {
    const md = chartMermaid(pr);
    expect(md).toMatch(
      /^```mermaid\n%%\{init: \{"themeVariables": \{"xyChart": \{"plotColorPalette": "#1f77b4, #ff7f0e"\}\}\}\}%%\nxychart-beta\n/,
    );
    expect(md).toContain('  title "PR <candidate & production>"\n  x-axis "recall" 0 --> 1\n  y-axis "precision" 0 --> 1\n');
    // 21 evenly spaced points (xychart spaces line points evenly along the axis).
    expect(md.match(/ {2}line \[([^\]]+)\]/)![1].split(', ')).toHaveLength(21);
    expect(md).toContain('\n```\n\n🔵 candidate · 🟠 production (dashed in the report)\n');
    const lat = chartMermaid(latency);
    expect(lat).toContain('y-axis "share of runs (%)" 0 --> ');
    expect(lat).toContain('🔵 batch 1: p50 2, p95 6, p99 6.2 ms');
    expect(
      chartMermaid({
        kind: 'share',
        title: 'Time',
        unit: 'ms',
        parts: [
          { name: 'decode', value: 1.5 },
          { name: 'infer', value: 3 },
        ],
      }),
    ).toBe('```mermaid\npie showData title Time\n  "decode (ms)" : 1.5\n  "infer (ms)" : 3\n```\n');
  });

  it('writes Azure DevOps tables with Unicode bars, keeping the percentiles', () => {
    expect(textBar(1, 2, 4)).toBe('██');
    expect(textBar(1, 8, 1)).toBe('▏');
    const t = chartTable(latency);
    expect(t).toContain('| latency (ms) | batch 1: share of runs |');
    expect(t).toContain('| **p50 / p95 / p99** | 2 / 6 / 6.2 |');
    const shares = [...t.matchAll(/ ([\d.]+)% \|/g)].map((m) => Number(m[1]));
    expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(100, 0);
    expect(formatNumber(0.81583)).toBe('0.816');
    expect(formatNumber(123.4)).toBe('123');
  });
});
