import { type Cell, escapeHtml, type Summary } from '../core/summary';
import { chartSvg, PALETTE } from '../report/charts';
import type { DeviceRow, FleetStatus } from './aggregate';

const n = (v: number | null | undefined, digits = 2) =>
  v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : Number(v.toFixed(digits)).toString();
const pct = (v: number) => `${n(v * 100, 1)}%`;

/** The tables both the job summary and the HTML page show, as header + rows. */
export function fleetTables(s: FleetStatus): { title: string; header: string[]; rows: Cell[][] }[] {
  const total = s.devices.total || 1;
  return [
    {
      title: 'Overview',
      header: ['field', 'value'],
      rows: [
        ['channel', s.channel],
        ['current release', s.current ? `${s.current.name} ${s.current.version}` : 'unknown (no channel document read)'],
        ['previous release', s.previous ? `${s.previous.name} ${s.previous.version}` : 'none'],
        [
          'rollout',
          s.rollout
            ? `${s.rollout.percent}%${s.rollout.phase ? ` (phase ${s.rollout.phase} of ${s.rollout.phases?.join(' → ')})` : ''}, since ${s.rollout.startedAt ?? 'n/a'}`
            : 'n/a',
        ],
        [
          'devices',
          `${s.devices.total} (${s.devices.reporting} reporting, ${s.devices.silent.length} silent, ${s.devices.neverReported.length} never reported)`,
        ],
        [
          'rejected reports',
          s.rejected.length
            ? Object.entries(s.rejectedCounts)
                .map(([k, v]) => `${v} ${k}`)
                .join(', ')
            : '0',
        ],
      ],
    },
    {
      title: 'Devices per release',
      header: ['release', 'devices', 'share'],
      rows: s.byRelease.map((r) => [r.version, r.devices, pct(r.devices / total)]),
    },
    {
      title: 'Current release on the devices that tried it',
      header: ['runs it', 'of which reporting', 'failed (health, crash)', 'incompatible', 'devices with reverts', 'failure rate'],
      rows: [[s.cohort.runs, s.cohort.runsReporting, s.cohort.failed, s.cohort.incompatible, s.cohort.reverts, pct(s.cohort.failureRate)]],
    },
    { title: 'Latest status per device', header: ['status', 'devices'], rows: Object.entries(s.byStatus).sort(([, a], [, b]) => b - a) },
    {
      title: 'Latency and throughput, new vs previous',
      header: ['', 'new', 'previous'],
      rows: [
        ['p50 latency (ms), median over devices', n(s.latency.current.p50), n(s.latency.previous.p50)],
        ['p95 latency (ms), median over devices', n(s.latency.current.p95), n(s.latency.previous.p95)],
        ['images per second, median over devices', n(s.fps.current), n(s.fps.previous)],
        ['devices with telemetry', s.latency.current.devices, s.latency.previous.devices],
        ['same devices, p50 ratio new/previous (median)', n(s.latency.ratio, 3), `${s.latency.pairedDevices} devices`],
        [
          'significance',
          s.latency.test
            ? `${s.latency.test.significant ? 'significant' : 'not significant'} (p = ${n(s.latency.test.p, 4)}, ${s.latency.test.name}, n = ${s.latency.test.n})`
            : 'fewer than 6 paired devices: not tested',
          '',
        ],
      ],
    },
    {
      title: 'Latency ratio by hardware (same devices)',
      header: ['GPU / driver', 'devices', 'p50 ratio new/previous'],
      rows: s.latency.groups.map((g) => [g.group, g.devices, n(g.ratio, 3)]),
    },
    {
      title: 'Output statistics drift (same devices)',
      header: ['statistic', 'devices', 'PSI', 'chi-square p', 'verdict'],
      rows: s.drift.map((d) => [
        d.statistic,
        d.devices,
        n(d.psi, 4),
        d.chiSquareP === null ? 'n/a' : n(d.chiSquareP, 4),
        d.significant ? 'significant difference' : 'no significant difference',
      ]),
    },
    {
      title: 'Rejected reports',
      header: ['object', 'problem', 'detail'],
      rows: s.rejected.slice(0, 200).map((r) => [r.key, r.problem, r.detail]),
    },
    {
      title: 'Silent devices',
      header: ['device', 'last report'],
      rows: s.table.filter((d) => d.silent).map((d) => [d.deviceId, d.lastSeen]),
    },
  ];
}

const DEVICE_HEADER = [
  'device',
  'groups',
  'runs',
  'slot',
  'status',
  'last report',
  'GPU',
  'driver',
  'commit',
  'data',
  'training job',
  'current release',
];
const deviceRow = (d: DeviceRow): Cell[] => [
  d.deviceId,
  d.groups.join(', '),
  d.version ?? 'none',
  d.slot ?? '',
  d.status,
  d.lastSeen,
  d.gpuModel ?? '',
  d.driver ?? '',
  d.gitCommit ?? '',
  d.dataFingerprint ?? '',
  d.trainingJob ?? '',
  d.onCurrent,
];

/** Markdown for a GitHub / Azure DevOps job summary: the tables, the device list folded (it can be long). */
export function writeFleetSummary(summary: Summary, s: FleetStatus, device?: DeviceRow): void {
  summary.heading(`Fleet status of ${s.channel}${s.current ? `: ${s.current.name} ${s.current.version}` : ''}`);
  for (const t of fleetTables(s)) {
    if (!t.rows.length) continue;
    summary.heading(t.title, 3).table(t.header, t.rows);
  }
  if (device)
    summary.heading(`Device ${device.deviceId}`, 3).table(
      ['field', 'value'],
      DEVICE_HEADER.map((h, i) => [h, deviceRow(device)[i]]),
    );
  const md = [
    `| ${DEVICE_HEADER.join(' | ')} |`,
    `| ${DEVICE_HEADER.map(() => '---').join(' | ')} |`,
    ...s.table.slice(0, 1000).map(
      (d) =>
        `| ${deviceRow(d)
          .map((c) => String(c ?? '').replace(/\|/g, '\\|'))
          .join(' | ')} |`,
    ),
  ].join('\n');
  summary.details(`Which device runs what (${s.table.length} devices${s.table.length > 1000 ? ', first 1000' : ''})`, md);
}

const STYLE = `
body { font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
header { background: #0d1117; color: #f0f6fc; padding: 20px 40px; } header h1 { margin: 0; font-size: 22px; } header p { margin: 4px 0 0; color: #9198a1; }
main { padding: 24px 40px; max-width: 1400px; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 12px 24px; margin-bottom: 16px; overflow-x: auto; }
h2 { font-size: 17px; margin: 4px 0 10px; }
table { border-collapse: collapse; } th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; } th { background: #f6f8fa; }
input { margin-bottom: 8px; padding: 4px 8px; width: 280px; }
tr.failed td { background: #ffebe9; } tr.silent td { color: #57606a; font-style: italic; }
`;

function htmlTable(header: string[], rows: Cell[][], rowClass?: (i: number) => string): string {
  const cell = (c: Cell) => escapeHtml(c === null || c === undefined ? '' : String(c));
  return `<table><thead><tr>${header.map((h) => `<th>${cell(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r, i) => `<tr class="${rowClass?.(i) ?? ''}">${r.map((c) => `<td>${cell(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

/** A self-contained page (no external requests): the same tables, a chart, and a filterable device table. */
export function fleetHtml(s: FleetStatus): string {
  const total = s.devices.total || 1;
  const chart = s.byRelease.length
    ? chartSvg({
        kind: 'bar',
        title: 'Share of devices per release',
        category: 'release',
        categories: s.byRelease.map((r) => r.version),
        value: { label: 'share', min: 0, max: 1 },
        series: [{ name: 'devices', color: PALETTE.candidate, values: s.byRelease.map((r) => r.devices / total) }],
      })
    : '';
  const sections = fleetTables(s)
    .filter((t) => t.rows.length)
    .map(
      (t) =>
        `<section><h2>${escapeHtml(t.title)}</h2>${htmlTable(t.header, t.rows)}${t.title === 'Devices per release' ? `<div>${chart}</div>` : ''}</section>`,
    );
  const devices = `<section><h2>Which device runs what</h2><input id="filter" placeholder="filter: device id, release, GPU, commit…" aria-label="filter devices">${htmlTable(
    DEVICE_HEADER,
    s.table.map(deviceRow),
    (i) => (s.table[i].onCurrent === 'failed' ? 'failed' : s.table[i].silent ? 'silent' : ''),
  )}</section>`;
  const script = `<script>
document.getElementById('filter').addEventListener('input', (e) => {
  const q = e.target.value.toLowerCase();
  for (const row of document.querySelectorAll('section:last-of-type tbody tr')) row.style.display = row.textContent.toLowerCase().includes(q) ? '' : 'none';
});
</script>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Fleet status: ${escapeHtml(s.channel)}</title><style>${STYLE}</style></head>
<body><header><h1>Fleet status of ${escapeHtml(s.channel)}${s.current ? `: ${escapeHtml(`${s.current.name} ${s.current.version}`)}` : ''}</h1><p>generated ${escapeHtml(s.generatedAt)} by mlship fleet-status</p></header>
<main>${sections.join('\n')}${devices}</main>${script}</body></html>
`;
}
