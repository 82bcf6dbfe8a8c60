#!/usr/bin/env node
// Entry point of the package's `elibadcode` bin: Node >= 24 runs the TypeScript sources directly.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(`elibadcode needs Node.js >= 24 (this is ${process.version}); run: source scripts/node24.sh`);
  process.exit(2);
}
const { main } = await import('../worker/cli.ts');
process.exitCode = await main(process.argv.slice(2));
