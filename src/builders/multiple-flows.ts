import { ConfigError } from '../core/errors.js';
import { FlowDesign } from './design.js';
import { CoreSettingsBuilder, type FlowDefinition } from './flow.js';
import { checkPath, JwksRoute, type PathValue } from './routes.js';

/**
 * Several flows behind one token endpoint (dispatched on `grant_type`), one discovery document
 * (grant types, client-authentication methods and scopes merged), one key set. Each flow keeps its
 * own handlers, TTL and accepted client-authentication methods.
 * @example
 * ```ts
 * const design = MultipleFlowsBuilder.create()
 *   .setIssuer('https://auth.example.com')
 *   .add(OIDCAuthorizationCodeBuilder.create().setTokenTTL(3600))
 *   .add(OIDCClientCredentialsBuilder.create().setTokenTTL(600))
 *   .build();
 * ```
 */
export class MultipleFlowsBuilder extends CoreSettingsBuilder {
  #tokenEndpoint = '/oauth2/token';
  readonly #jwks = new JwksRoute();
  #jwksRequested = false;
  #schemeName = 'OIDC Multiple Flows';
  readonly #flows: Array<{ toFlowDefinition(): FlowDefinition }> = [];

  static create(options: { tokenEndpoint?: PathValue | string; securitySchemeName?: string } = {}): MultipleFlowsBuilder {
    const builder = new MultipleFlowsBuilder();
    if (options.tokenEndpoint !== undefined) builder.tokenEndpoint(options.tokenEndpoint);
    if (options.securitySchemeName !== undefined) builder.setSecuritySchemeName(options.securitySchemeName);
    return builder;
  }

  /** The one token endpoint of every flow (default `/oauth2/token`); the flows' own token paths are not used. */
  tokenEndpoint(path: PathValue | string): this {
    this.#tokenEndpoint = checkPath(path, 'tokenEndpoint');
    return this;
  }

  /** Serve the shared JWKS (default `/oauth2/keys`; served anyway when a flow is OIDC or publishes its keys). */
  jwksRoute(configure: (route: JwksRoute) => unknown = (route) => route): this {
    configure(this.#jwks);
    this.#jwksRequested = true;
    return this;
  }

  setSecuritySchemeName(name: string): this {
    if (typeof name !== 'string' || name === '') throw new ConfigError('setSecuritySchemeName needs a non-empty string');
    this.#schemeName = name;
    return this;
  }

  /** Add a flow (an authorization-code, client-credentials or device builder; each kind once). */
  add(flow: { toFlowDefinition(): FlowDefinition }): this {
    if (typeof flow?.toFlowDefinition !== 'function') throw new ConfigError('MultipleFlowsBuilder.add needs a flow builder');
    this.#flows.push(flow);
    return this;
  }

  build(): FlowDesign {
    const flows: FlowDefinition[] = this.#flows.map((b) => b.toFlowDefinition());
    // Core settings: the multiple-flows builder's own, plus what the flows set (each once).
    const core = { ...this.core, clients: [...this.core.clients], users: [...this.core.users], options: { ...this.core.options } };
    for (const flow of flows) {
      for (const key of ['issuer', 'storage', 'logger'] as const) {
        const value = flow.core[key];
        if (value === undefined) continue;
        if (core[key] !== undefined && core[key] !== value) throw new ConfigError(`MultipleFlowsBuilder: two different ${key} values; set it once, on the MultipleFlowsBuilder`);
        (core as Record<string, unknown>)[key] = value;
      }
      core.clients.push(...flow.core.clients);
      core.users.push(...flow.core.users);
      core.options = { ...flow.core.options, ...core.options };
    }
    const additionalConfiguration = Object.assign({}, ...flows.map((f) => f.additionalConfiguration), this.extraConfiguration) as Record<string, unknown>;
    const jwksServed = this.#jwksRequested || flows.some((f) => f.oidc || f.jwks.requested || f.useAccessTokenJwks);
    const jwksPath = this.#jwksRequested ? this.#jwks.path : (flows.find((f) => f.jwks.requested)?.jwks.path ?? this.#jwks.path);
    return new FlowDesign({
      flows,
      multiple: true,
      tokenPath: this.#tokenEndpoint,
      jwksPath,
      jwksServed,
      schemeName: this.#schemeName,
      additionalConfiguration,
      core,
      ...(this.description !== undefined ? { description: this.description } : {}),
    });
  }
}
