import { barChartSvg, lineChartSvg } from '../../shared/metrics/charts/svg';

describe('SVG charts', () => {
  it('draws one path per line series, scaled into the plot, with escaped labels', () => {
    const svg = lineChartSvg({
      title: 'PR <candidate & production>',
      xLabel: 'recall',
      yLabel: 'precision',
      width: 200,
      height: 100,
      series: [
        { name: 'a', color: '#111111', points: [[0, 1], [1, 0]] },
        { name: 'b', color: '#222222', dashed: true, points: [[0, 0.5], [0.5, -1]] },
      ],
    });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100"')).toBe(true);
    expect(svg).toContain('PR &lt;candidate &amp; production&gt;');
    // plot area: x 56..184, y 30..54 -> (0,1) at (56,30), (1,0) at (184,54)
    expect(svg).toContain('<path d="M56 30 L184 54" fill="none" stroke="#111111" stroke-width="2"/>');
    // -1 (undefined precision) is not drawn
    expect(svg).toContain('<path d="M56 42" fill="none" stroke="#222222" stroke-width="2" stroke-dasharray="6 4"/>');
    expect(svg).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });

  it('draws grouped bars and skips missing values', () => {
    const svg = barChartSvg({ title: 't', yLabel: 'dice', categories: ['1', '2'], width: 200, height: 100, series: [{ name: 'c', color: '#123456', values: [1, null] }, { name: 'p', color: '#654321', values: [0.5, 0.25] }] });
    expect(svg.match(/fill="#123456"/g)).toHaveLength(1);
    expect(svg.match(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="#654321"\/>/g)).toHaveLength(2);
  });
});
