// What @kubernetes/client-node/dist/config.js imports from its ./gen/index.js barrel, without the
// rest of the barrel (every generated API group and model). operator/start.ts resolves config.js's
// import here. The package version is pinned (package.json); test/unit/operator.start.test.ts
// checks that config.js still imports exactly these names.
export { createConfiguration } from '@kubernetes/client-node/dist/gen/configuration.js';
export { ServerConfiguration } from '@kubernetes/client-node/dist/gen/servers.js';
