/**
 * The protocol checks of the framework adapters, for the two framework-free ones under /oauth:
 * node:http (toNodeListener, and with `coalesceWrites` as the ready-to-run server uses it) and fetch
 * (portcullis.fetch behind a node:http bridge). Nothing parses the body before them, so the core
 * always gets the raw bytes.
 */
import { adapterProtocolSuite } from './protocol-suite.js';

adapterProtocolSuite('node', (body) => body instanceof Uint8Array);
adapterProtocolSuite('node-coalesced', (body) => body instanceof Uint8Array);
adapterProtocolSuite('fetch', (body) => body instanceof Uint8Array);
