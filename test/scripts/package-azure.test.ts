import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageAzureExtension } from '../../scripts/package-azure';
import { ROOT } from '../support/runners';

/** The .vsix is a zip (Open Packaging Conventions); adm-zip reads its entries. */
const AdmZip = require('adm-zip') as new (file: string) => { getEntries(): { entryName: string }[]; readAsText(name: string): string };

const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'azure-tasks', 'vss-extension.json'), 'utf8')) as {
  contributions: { properties: { name: string } }[];
};
const tasks = manifest.contributions.map((c) => c.properties.name);

describe('npm run package:azure (tfx extension create)', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vsix-'));

  it('packs every task with its task.json, bundle and icon, the overview and the extension icon', async () => {
    const packaged = await packageAzureExtension({ outDir: out });
    expect(path.basename(packaged.file)).toBe(
      `mlship.mlship-tasks-${JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}.vsix`,
    );
    const zip = new AdmZip(packaged.file);
    const names = new Set(zip.getEntries().map((e) => e.entryName));
    for (const entry of ['extension.vsixmanifest', 'extension.vsomanifest', 'overview.md', 'images/icon.png'])
      expect(names).toContain(entry);
    expect(tasks.length).toBeGreaterThanOrEqual(9);
    for (const task of tasks) {
      for (const file of ['task.json', 'dist/index.js', 'icon.png']) expect(names).toContain(`${task}/${file}`);
      const inVsix = JSON.parse(zip.readAsText(`${task}/task.json`)) as { id: string };
      expect(inVsix.id).toBe((JSON.parse(fs.readFileSync(path.join(ROOT, 'azure-tasks', task, 'task.json'), 'utf8')) as { id: string }).id);
    }
    // The adapters' sources are bundled into each dist/; the staging copy leaves them out.
    expect([...names].some((n) => n.startsWith('_host'))).toBe(false);
    expect(zip.readAsText('extension.vsixmanifest')).toContain('Publisher="mlship"');
  });

  it('takes another publisher from --publisher, and refuses one the Marketplace would', async () => {
    const packaged = await packageAzureExtension({ outDir: out, publisher: 'contoso-lab' });
    expect(path.basename(packaged.file)).toMatch(/^contoso-lab\.mlship-tasks-/);
    expect(new AdmZip(packaged.file).readAsText('extension.vsixmanifest')).toContain('Publisher="contoso-lab"');
    await expect(packageAzureExtension({ outDir: out, publisher: 'bad publisher!' })).rejects.toThrow(
      '"bad publisher!" is not a Marketplace publisher id',
    );
  });
});
