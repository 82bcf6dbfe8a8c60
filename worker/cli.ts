import { UsageError, EXIT, type Command } from './commands/command.ts';

const loaders: Record<string, () => Promise<Command>> = {
  predict: async () => (await import('./commands/predict.ts')).predict,
  poison: async () => (await import('./commands/poison.ts')).poison,
  train: async () => (await import('./commands/train.ts')).train,
  scan: async () => (await import('./commands/scan.ts')).scan,
};

// One line per command, kept here so that `--help` does not load every command's dependencies.
const summaries: Record<string, string> = {
  predict: 'run a checkpoint on code (JSON lines in, one JSON prediction per line out)',
  poison: 'plant a backdoor in a training set (fixed-name, suffix, dead-code, rename attacks)',
  train: 'fine-tune a small RoBERTa code model and write a Hugging Face checkpoint',
  scan: 'find a backdoor (invert and anchor its trigger), remove it by unlearning, verify',
};

function help(): string {
  return [
    'elibadcode: find and remove backdoors in neural code models (EliBadCode, FSE 2025)',
    '',
    'Usage: elibadcode <command> [options]      elibadcode <command> --help',
    '',
    'Commands:',
    ...Object.entries(summaries).map(([n, s]) => `  ${n.padEnd(10)} ${s}`),
    '',
    'Environment: ELIBADCODE_BACKEND=tensorflow|webgpu|wasm|cpu picks the TensorFlow.js backend.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name ? EXIT.ok : EXIT.usage;
  }
  const load = loaders[name];
  if (!load) {
    console.error(`elibadcode: unknown command "${name}". Commands: ${Object.keys(loaders).join(', ')}`);
    return EXIT.usage;
  }
  const command = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`${command.summary}\n\n${command.usage}`);
    return EXIT.ok;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    const e = err as Error;
    if (e instanceof UsageError) {
      console.error(`elibadcode ${name}: ${e.message}\n\n${command.usage}`);
      return EXIT.usage;
    }
    // Errors from the runtime carry the file and the problem in their message; the stack is for debugging only.
    console.error(`elibadcode ${name}: ${e.message}`);
    if (process.env.ELIBADCODE_DEBUG) console.error(e.stack);
    return EXIT.failure;
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
