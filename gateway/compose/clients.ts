/**
 * The client registry: who may call the API, with which token and roles. Loaded at start-up (in
 * production the sample credentials file, and any published sample token whatever file holds it, are
 * refused: config/demo-material.ts), then kept current: a change to the file (polled every
 * CORDON_CLIENTS_POLL_MS, 2 s by default) or SIGHUP reloads it. The SIGHUP listener is registered here, before the policy reloader's
 * (services.ts), so on SIGHUP the credentials are reloaded first, then the policies.
 * Callers read the registry through the returned function, never a captured copy, so a reload is seen
 * by the next request.
 */
import { unwatchFile, watchFile } from 'node:fs';
import { ClientRegistry, loadClientsFile } from '../config/clients.js';
import { refuseSampleTokens } from '../config/demo-material.js';
import { GatewayError } from '../errors/index.js';
import type { Wiring } from './context.js';

export async function watchClients({ config, logger, closers }: Wiring): Promise<() => ClientRegistry> {
  const clientsFile = await loadClientsFile(config.clientsFile);
  if (clientsFile.sample && config.production) {
    throw new GatewayError('config_invalid', `${config.clientsFile} is the sample credentials file: set CORDON_CLIENTS to your own in production`);
  }
  if (config.production) refuseSampleTokens(config.clientsFile, clientsFile.clients);
  let registry = new ClientRegistry(clientsFile);
  // New clients (`cordon clients add`) and rotated tokens take effect without a restart; a broken
  // file is refused and the last good registry stays in force.
  const reloadClients = async () => {
    try {
      const next = await loadClientsFile(config.clientsFile);
      if (next.sample && config.production) throw new GatewayError('config_invalid', 'sample credentials refused in production');
      if (config.production) refuseSampleTokens(config.clientsFile, next.clients);
      registry = new ClientRegistry(next);
      logger.info({ clients: next.clients.length }, 'clients file reloaded');
    } catch (err) {
      logger.error({ code: (err as GatewayError).code, err: (err as Error).message }, 'clients file reload refused: keeping the previous credentials');
    }
  };
  watchFile(config.clientsFile, { interval: config.clientsPollMs }, () => void reloadClients());
  closers.push(async () => unwatchFile(config.clientsFile));
  const onHup = () => void reloadClients();
  process.on('SIGHUP', onHup);
  closers.push(async () => process.off('SIGHUP', onHup));
  return () => registry;
}
