// A Hatchet TypeScript SDK probe (@hatchet-dev/typescript-sdk from the npm registry):
//
//   node probe.js worker NAME        register task NAME and serve it until SIGTERM
//   node probe.js run NAME MESSAGE   run task NAME (any language's worker) once, print its JSON result
//
// The client takes every setting from its environment (HATCHET_CLIENT_*), as the SDK does.
'use strict';

const { HatchetClient } = require('@hatchet-dev/typescript-sdk/v1');

async function main() {
  const [mode, name, message] = process.argv.slice(2);
  const hatchet = HatchetClient.init();
  if (mode === 'worker') {
    const task = hatchet.task({
      name,
      fn: async (input) => ({ echo: String(input.message).toUpperCase(), task: name }),
    });
    const worker = await hatchet.worker(`${name}-worker`, { workflows: [task], slots: 2 });
    process.on('SIGTERM', async () => {
      await worker.stop();
      process.exit(0);
    });
    await worker.start();
    return;
  }
  if (mode === 'run') {
    const result = await hatchet.run(name, { message });
    // A run by name answers with the workflow's output: the task's, under its name.
    const output = result && result[name] !== undefined ? result[name] : result;
    process.stdout.write(`${JSON.stringify(output)}\n`);
    process.exit(0);
  }
  throw new Error(`unknown mode ${mode}`);
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
