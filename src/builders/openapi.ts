/**
 * OpenAPI 3.1 security schemes for a design (the seed package's `docs()`), so an API documented with
 * OpenAPI gets a working "Authorize" button: `openIdConnect` for OpenID Connect designs, `oauth2`
 * with the matching flows otherwise.
 * @see https://spec.openapis.org/oas/v3.1.0#security-scheme-object
 */
import type { DesignDefinition } from './design.js';

export interface OpenAPIOAuthFlow {
  authorizationUrl?: string;
  tokenUrl?: string;
  refreshUrl?: string;
  scopes: Record<string, string>;
}

/** OAS 3.1 has no device flow; `x-deviceAuthorization` carries it (OAS 3.2 names it `deviceAuthorization`). */
export interface OpenAPIDeviceFlow {
  deviceAuthorizationUrl: string;
  tokenUrl: string;
  refreshUrl?: string;
  scopes: Record<string, string>;
}

export type OpenAPISecurityScheme =
  | { type: 'openIdConnect'; openIdConnectUrl: string; description?: string }
  | {
      type: 'oauth2';
      description?: string;
      flows: {
        authorizationCode?: OpenAPIOAuthFlow & { authorizationUrl: string; tokenUrl: string };
        clientCredentials?: OpenAPIOAuthFlow & { tokenUrl: string };
        'x-deviceAuthorization'?: OpenAPIDeviceFlow;
      };
    };

export function toOpenAPISecurityScheme(def: DesignDefinition, issuer: string | undefined, refreshPath: string | undefined): OpenAPISecurityScheme {
  // Relative references until the issuer is known (OAS 3.1 resolves them against the server URL).
  const base = issuer === undefined ? '' : issuer.replace(/\/$/, '');
  const describe = def.description !== undefined ? { description: def.description } : {};
  if (def.flows.some((f) => f.oidc)) {
    return { type: 'openIdConnect', openIdConnectUrl: `${base}/.well-known/openid-configuration`, ...describe };
  }
  const url = (path: string): string => (/^https?:\/\//.test(path) ? path : base + path);
  const tokenUrl = url(def.tokenPath);
  const flows: Extract<OpenAPISecurityScheme, { type: 'oauth2' }>['flows'] = {};
  for (const flow of def.flows) {
    const scopes = { ...flow.scopes };
    const refresh = flow.refresh !== undefined && refreshPath !== undefined ? { refreshUrl: url(refreshPath) } : {};
    if (flow.kind === 'authorization_code') {
      const declared = def.additionalConfiguration.authorization_endpoint;
      const authorizationUrl = typeof declared === 'string' ? url(declared) : url(flow.authorization?.path ?? '/oauth2/authorize');
      flows.authorizationCode = { authorizationUrl, tokenUrl, ...refresh, scopes };
    } else if (flow.kind === 'client_credentials') {
      flows.clientCredentials = { tokenUrl, scopes };
    } else {
      flows['x-deviceAuthorization'] = { deviceAuthorizationUrl: url(flow.authorization?.path ?? '/oauth2/devicecode'), tokenUrl, ...refresh, scopes };
    }
  }
  return { type: 'oauth2', flows, ...describe };
}
