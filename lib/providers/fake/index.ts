export { FakeClock } from "./fake-clock.js";
export {
  FakeCloud,
  FakeCloudFault,
  type FakeCloudOptions,
  type FakeInstance,
  type FakeOperation,
  type FakeRunInput,
  type FaultKind,
} from "./fake-cloud.js";
export {
  FakeCloudApi,
  FakeProvider,
  type FakeProviderCall,
  type FakeProviderOptions,
} from "./fake-provider.js";
