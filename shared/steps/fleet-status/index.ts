import * as path from 'node:path';
import { writeOutputFile } from '../../core/output-file';
import { connectionsFromInputs } from '../../cloud/connections';
import { mergeInputs } from '../../core/merge-inputs';
import { defineStep } from '../../core/step';
import { fleetHtml, writeFleetSummary } from '../../fleet/render';
import { loadFleetStatus, reportInputs } from '../../fleet/step-inputs';
import type { ChannelDocument } from '../../ota/channel';
import { publicKeyInput } from '../../package/key-inputs';
import { readChannel } from '../../ota/publish';
import { storeCloudInputs, storeFromInputs, storeInputs } from '../../ota/step-inputs';

export const fleetStatusStep = defineStep({
  name: 'fleet-status',
  title: 'Fleet status',
  description:
    'Reads the device reports of an OTA channel and writes a job summary, JSON and an HTML page: devices per release and phase, install and health outcomes, reverts, incompatible and silent devices, latency/FPS and output drift of the new release against the previous one on the same devices, and which device runs what.',
  azure: { id: 'fd505ceb-7ad7-4a05-b72a-94d45bfb0539', major: 1, minor: 0, patch: 0, category: 'Deploy' },
  branding: { icon: 'activity', color: 'blue' },
  inputs: mergeInputs(
    { channel: { type: 'string', default: 'production', description: 'Channel whose devices are shown.' } },
    storeInputs,
    {
      publicKey: {
        type: 'string',
        description:
          'Public key (PEM or file) the channel document is signed with; without it the channel is not read and the status has no current/previous release.',
      },
    },
    reportInputs,
    {
      device: {
        type: 'string',
        description: 'A device id to answer "what runs on this instrument, from which data and commit?" in the summary.',
      },
      jsonFile: { type: 'path', default: 'fleet-status.json', description: 'Where to write the status as JSON (mlship.fleet-status/v1).' },
      htmlFile: { type: 'path', default: 'fleet-status.html', description: 'Where to write the self-contained HTML page.' },
    },
    storeCloudInputs,
  ),
  outputs: {
    devices: { description: 'Devices seen (and in the inventory).' },
    reporting: { description: 'Devices that reported within silent-after-hours.' },
    silent: { description: 'Devices with no report for silent-after-hours.' },
    onCurrent: { description: 'Devices that run the current release.' },
    failureRate: { description: 'Share of devices that tried the current release and failed it.' },
    rejectedReports: { description: 'Malformed, oversized or forged reports (named in the JSON and the log).' },
    json: { description: 'Path of the JSON status.' },
    html: { description: 'Path of the HTML page.' },
  },
  async run(inputs, ctx) {
    // One set of connections for the channel store and the reports store.
    const connections = connectionsFromInputs(inputs, ctx);
    let doc: ChannelDocument | undefined;
    if (inputs.publicKey) {
      const key = publicKeyInput(inputs.publicKey, ctx.inputLabel('publicKey'), ctx.workspace);
      doc = (await readChannel(storeFromInputs(inputs, ctx, connections), inputs.channel, key))?.doc;
      if (!doc) ctx.log.warning(`Channel "${inputs.channel}" does not exist in the store; showing the reports without it.`);
    } else
      ctx.log.warning(
        `No "${ctx.inputLabel('publicKey')}" given: the channel document is not read, so current and previous release are unknown.`,
      );
    const status = await ctx.group(`Reports of ${inputs.channel}`, () =>
      loadFleetStatus(inputs, ctx, inputs.channel, doc, 'to read the device reports', connections),
    );
    const device = inputs.device ? status.table.find((d) => d.deviceId === inputs.device) : undefined;
    if (inputs.device && !device) ctx.log.warning(`Device ${inputs.device} has no report on channel ${inputs.channel}.`);
    if (device)
      ctx.log.info(
        `${device.deviceId} runs ${device.version ?? 'nothing'} (commit ${device.gitCommit ?? 'unknown'}, data ${device.dataFingerprint ?? 'unknown'}, training job ${device.trainingJob ?? 'unknown'}); last report ${device.lastSeen}: ${device.status}.`,
      );
    await writeOutputFile(inputs.jsonFile, JSON.stringify(status, null, 2) + '\n', ctx.inputLabel('jsonFile'));
    await writeOutputFile(inputs.htmlFile, fleetHtml(status), ctx.inputLabel('htmlFile'));
    writeFleetSummary(ctx.summary, status, device);
    ctx.log.info(
      `${status.devices.total} devices: ${status.cohort.runs} run ${status.current?.version ?? 'the current release'}, ${status.devices.silent.length} silent, ${status.cohort.failed} failed it, ${status.cohort.incompatible} incompatible; ${status.rejected.length} reports rejected. Page: ${path.relative(ctx.workspace, inputs.htmlFile) || inputs.htmlFile}`,
    );
    return {
      devices: status.devices.total,
      reporting: status.devices.reporting,
      silent: status.devices.silent.length,
      onCurrent: status.cohort.runs,
      failureRate: status.cohort.failureRate,
      rejectedReports: status.rejected.length,
      json: inputs.jsonFile,
      html: inputs.htmlFile,
    };
  },
});
