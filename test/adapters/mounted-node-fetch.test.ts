/**
 * The protocol checks of the framework adapters, for the two framework-free ones under /oauth:
 * node:http (toNodeListener) and fetch (portcullis.fetch behind a node:http bridge). Nothing parses
 * the body before them, so the core always gets the raw bytes.
 */
import { adapterProtocolSuite } from './protocol-suite.js';

adapterProtocolSuite('node', (body) => body instanceof Uint8Array);
adapterProtocolSuite('fetch', (body) => body instanceof Uint8Array);
