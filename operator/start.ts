// The operator process's entrypoint: it makes client-node's KubeConfig load without the generated
// API clients, then runs operator/main.ts. The container runs the JavaScript build of this file
// (operator/build.ts, operator/runtime.ts); `node operator/start.ts` runs the sources.
//
// Why: `@kubernetes/client-node/dist/config.js` (KubeConfig) imports `./gen/index.js` for two small
// things, createConfiguration and ServerConfiguration, and that barrel re-exports every generated
// API group and model: about 20 MB of resident memory (module sources, compiled code) the operator
// never uses: its API calls go through KubeClient (operator/kube.ts). A resolve hook hands config.js
// a barrel with just those two exports. Any other importer of gen/index.js, the package index
// included, still gets the real one, and the classes are the same modules either way.
//
// `node operator/main.ts` works as well; it only loads more.
import { registerHooks } from 'node:module';

const SLIM_GEN = import.meta.resolve('./client-node-gen.ts');

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === './gen/index.js' && context.parentURL?.endsWith('/@kubernetes/client-node/dist/config.js')) {
      return { url: SLIM_GEN, shortCircuit: true };
    }
    return nextResolve(specifier, context);
  },
});

const { main } = await import('./main.ts');
await main(process.argv.slice(2));
