#!/usr/bin/env node
// The `cordon` command. In a checkout (tsx installed as a dev dependency) it loads the TypeScript CLI
// through tsx, so no build step is needed; where tsx is not installed (the production image, installed
// with --omit=dev) it runs the compiled CLI from dist/ (`npm run build`).
let tsx;
try {
  tsx = await import('tsx/esm/api');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
}

if (tsx) {
  tsx.register();
  await import('./cli/main.ts');
} else {
  try {
    await import('../dist/scripts/cli/main.js');
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/scripts/cli/main.js')) throw err;
    process.stderr.write('cordon: neither tsx (npm ci) nor the compiled CLI (npm run build) is installed\n');
    process.exit(1);
  }
}
