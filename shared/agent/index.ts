export {
  type AgentReport,
  type AgentState,
  type AgentStatus,
  channelNameOf,
  DeviceAgent,
  type DeviceAgentOptions,
  RefusedError,
  runDeviceAgent,
  type RunAgentOptions,
} from './agent';
export { deviceAgentCommand } from './command';
export { deferReason, insideWindow, type InstallWindow } from './conditions';
export { packageUrl } from './fetch';
export { type SlotName, Slots } from './slots';
