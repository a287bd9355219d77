/** Provider choice: the lowest priority tier first, weighted random within a tier. */
import type { ModelRoute, RouteTier } from '../config/snapshot.js';
import { gatewayError, type GatewayError } from '../errors.js';

/** Picks a route; `random` in [0, 1) is injectable for tests. */
export function chooseRoute(tiers: readonly RouteTier[], random: () => number = Math.random): ModelRoute | GatewayError {
  const tier = tiers[0];
  if (!tier || tier.routes.length === 0) return gatewayError('provider_unavailable', 'No provider is available for this model.');
  if (tier.routes.length === 1) return tier.routes[0] as ModelRoute;
  let point = random() * tier.totalWeight;
  for (const route of tier.routes) {
    point -= route.provider.weight;
    if (point < 0) return route;
  }
  return tier.routes[tier.routes.length - 1] as ModelRoute;
}
