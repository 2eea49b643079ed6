// The structured logger the kube layer writes to; main.ts wires the process's JSON logger.
export { noopLogger, type LogSink as Logger } from '../log.js';
