// The structured logger the kube layer writes to; main.ts creates the process's JSON logger and agent.ts hands it in.
export { noopLogger, type LogSink as Logger } from '../log.js';
