/**
 * Serve one of the builder examples with Hapi, as the seed package's apps do.
 * Usage: node --import tsx examples/builders/serve.ts <example> [port]
 * e.g.   node --import tsx examples/builders/serve.ts token-route-client-credentials 3000
 */
import Hapi from '@hapi/hapi';
import type { FlowBuilder, MultipleFlowsBuilder } from '../../src/builders/index.js';

const [name = 'oidc-authorization-code', port = '3000'] = process.argv.slice(2);
if (!/^[a-z-]+$/.test(name)) throw new Error('usage: serve.ts <example> [port]');
const example = (await import(`./${name}.js`)) as { default: Pick<FlowBuilder<never>, 'build'> | MultipleFlowsBuilder };
const issuer = `http://127.0.0.1:${port}`;
const server = Hapi.server({ host: '127.0.0.1', port: Number(port) });
await server.register({ plugin: example.default.build().hapiPlugin(), options: { issuer } });
await server.start();
console.log(`${name} listening at ${issuer} (discovery: ${issuer}/.well-known/openid-configuration)`);
