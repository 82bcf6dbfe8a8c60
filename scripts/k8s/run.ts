// Starts a throwaway control plane by hand, for debugging: prints the kubeconfig and a curl line,
// then runs until Ctrl-C (which stops everything and removes the temp dir).
//   node scripts/k8s/run.ts [--controller-manager]
// Set ELIBADCODE_KEEP_CONTROLPLANE_DIR=1 to keep certs, kubeconfig and logs afterwards.
import { startControlPlane } from '../../test/harness/controlplane.ts';

const cp = await startControlPlane({
  controllerManager: process.argv.includes('--controller-manager'),
  log: (l) => console.error(`controlplane: ${l}`),
});
console.log(`server:      ${cp.server}
kubeconfig:  export KUBECONFIG=${cp.kubeconfigPath}
logs:        ${cp.dir}/{etcd,kube-apiserver${cp.controllerManager ? ',kube-controller-manager' : ''}}.log
pids:        ${JSON.stringify(cp.pids)}
try:         curl --cacert ${cp.caCertPath} -H 'Authorization: Bearer ${cp.adminToken}' ${cp.server}/readyz?verbose
Ctrl-C stops it.`);
const shutdown = async () => {
  await cp.stop();
  process.exit(0);
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
setInterval(() => {}, 1 << 30);
