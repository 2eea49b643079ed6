#!/usr/bin/env node
// crs-controller: the per-node agent. Flags are in config.ts (`--help`); wiring is in agent.ts.
import { startAgent } from './agent.js';
import { ConfigError, parseConfig, usage } from './config.js';
import { createLogger } from './log.js';

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(usage());
  process.exit(0);
}

let config;
try {
  config = parseConfig(argv, process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`crs-controller: ${err.message}\n\n${usage()}`);
    process.exit(2);
  }
  throw err;
}

const logger = createLogger(config.logLevel, undefined, { node: config.nodeName });
logger.info('starting crs-controller agent', { config });

const agent = await startAgent(config, logger);
agent.started.catch((err: unknown) => {
  logger.error('agent failed to start', { err });
  process.exit(1);
});

let signalled = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (signalled) {
      logger.warn('second signal: exiting now', { signal });
      process.exit(1);
    }
    signalled = true;
    logger.info('shutting down', { signal });
    agent.stop().then(
      () => {
        logger.info('stopped cleanly');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error('shutdown failed', { err });
        process.exit(1);
      },
    );
  });
}
process.on('unhandledRejection', (err) => logger.error('unhandled rejection', { err }));
