import type { EmbedConfig } from '../embed/config';
import { registerEmbedRoutes } from '../embed/routes';
import type { Viewer } from '../auth';
import type { ViewerContext } from '../context';
import type { ViewerPlugin } from '../server';

/**
 * Mounts the embeddable history (viewer/embed/) on the viewer: an embed token
 * names one tenant and one object, so the history is read in that tenant's
 * scope, and each view is recorded as a read by `embed:<tenant>` like any other.
 */
export function embedPlugin(embed: EmbedConfig): ViewerPlugin {
  return (app, ctx: ViewerContext) => {
    registerEmbedRoutes(app, {
      key: embed.key,
      allowedOrigins: embed.allowedOrigins,
      loadHistory: async (object, tenant) => {
        const viewer: Viewer = { identity: `embed:${tenant}`, scope: { kind: 'tenants', tenants: new Set([tenant]) }, via: 'embed' };
        await ctx.recorder.record(viewer, { kind: 'object', type: object.type, id: object.id, view: 'embed', params: {} }, { ip: null, userAgent: null, method: 'GET', path: '/embed' });
        return ctx.data.history({ object, range: { since: null, until: null }, actor: null, action: null }, viewer.scope);
      },
    });
  };
}
