/**
 * `npm run package:azure [-- --publisher <id>] [--out <dir>]`: the Azure DevOps extension (.vsix) with every task,
 * packaged by tfx-cli (Microsoft's own packager) from a staging copy of azure-tasks/ in which the icons are rendered
 * from images/icon.svg. The publisher is package.json's `config.azurePublisher` unless --publisher overrides it
 * (a Marketplace publisher id is per organisation, so everyone who publishes their own build needs this).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

const ROOT = path.resolve(__dirname, '..');
const TASKS = path.join(ROOT, 'azure-tasks');

export interface PackagedExtension {
  file: string;
  publisher: string;
  tasks: string[];
}

export async function packageAzureExtension(options: { publisher?: string; outDir?: string } = {}): Promise<PackagedExtension> {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
    config: { azurePublisher: string };
  };
  const publisher = options.publisher ?? pkg.config.azurePublisher;
  if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(publisher))
    throw new Error(`"${publisher}" is not a Marketplace publisher id (letters, digits and hyphens).`);
  const manifest = JSON.parse(fs.readFileSync(path.join(TASKS, 'vss-extension.json'), 'utf8')) as {
    contributions: { properties: { name: string } }[];
  };
  const tasks = manifest.contributions.map((c) => c.properties.name);
  const missing = tasks.filter((t) => !fs.existsSync(path.join(TASKS, t, 'dist', 'index.js')));
  if (missing.length) throw new Error(`No bundle in ${missing.map((t) => `azure-tasks/${t}/dist`).join(', ')}: run "npm run build" first.`);

  const stage = fs.mkdtempSync(path.join(ROOT, '.mlship', 'vsix-stage-'));
  try {
    fs.cpSync(TASKS, stage, { recursive: true, filter: (src) => !src.includes(`${path.sep}_host`) });
    const svg = fs.readFileSync(path.join(TASKS, 'images', 'icon.svg'));
    await sharp(svg)
      .resize(128, 128)
      .png()
      .toFile(path.join(stage, 'images', 'icon.png'));
    // Azure DevOps shows a task's icon.png (32 px and up) in the task picker and the run log.
    const taskIcon = await sharp(svg).resize(64, 64).png().toBuffer();
    for (const t of tasks) fs.writeFileSync(path.join(stage, t, 'icon.png'), taskIcon);

    const outDir = path.resolve(options.outDir ?? path.join(ROOT, '.mlship', 'vsix'));
    fs.mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, `${publisher}.mlship-tasks-${pkg.version}.vsix`);
    const tfx = path.join(ROOT, 'node_modules', 'tfx-cli', '_build', 'tfx-cli.js');
    const r = spawnSync(
      process.execPath,
      [
        tfx,
        'extension',
        'create',
        '--root',
        stage,
        '--manifest-globs',
        'vss-extension.json',
        '--publisher',
        publisher,
        '--output-path',
        file,
        '--no-prompt',
        '--json',
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0 || !fs.existsSync(file)) throw new Error(`tfx extension create failed (exit ${r.status}):\n${r.stderr || r.stdout}`);
    return { file, publisher, tasks };
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const { values } = parseArgs({ options: { publisher: { type: 'string' }, out: { type: 'string' } } });
  packageAzureExtension({ publisher: values.publisher, outDir: values.out }).then(
    (p) => console.log(`packaged ${path.relative(process.cwd(), p.file)}: ${p.tasks.length} tasks, publisher ${p.publisher}`),
    (e: Error) => {
      console.error(`package:azure: ${e.message}`);
      process.exitCode = 1;
    },
  );
}
