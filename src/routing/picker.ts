/**
 * Client for an external endpoint picker (protos/tollgate/picker/v1/picker.proto). Asked once per
 * attempt when there is a choice; a timeout, an error or an unknown answer falls back to the
 * built-in strategy (the router does that when this resolves undefined). One client per address.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from '../observability/logger.js';
import { endpointPickerTotal } from '../observability/metrics.js';
import type { HealthTracker } from './health.js';
import type { Candidate, RequestPlan } from './plan.js';
import type { EndpointPicker } from './router.js';

const PROTO = fileURLToPath(new URL('../../../protos/tollgate/picker/v1/picker.proto', import.meta.url));

interface PickRequest {
  requestId: string;
  model: string;
  attempt: number;
  candidates: {
    id: string;
    provider: string;
    address: string;
    upstreamModel: string;
    weight: number;
    outstanding: number;
    ewmaTtfbMs: number;
  }[];
  tried: string[];
  body: Buffer;
}
interface PickResponse {
  id?: string;
}
type PickClient = grpc.Client & {
  Pick(req: PickRequest, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: PickResponse) => void): grpc.ClientUnaryCall;
};

let clientCtor: (new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ClientOptions) => PickClient) | undefined;

/** The generated client constructor (loaded once). */
export function pickerServiceDefinition(): grpc.ServiceDefinition {
  return loadCtor().service;
}

function loadCtor(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(PROTO, { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { tollgate: { picker: { v1: { EndpointPicker: grpc.ServiceClientConstructor } } } };
  return pkg.tollgate.picker.v1.EndpointPicker;
}

export class GrpcEndpointPicker implements EndpointPicker {
  private readonly client: PickClient;

  constructor(
    address: string,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
  ) {
    clientCtor ??= loadCtor() as unknown as typeof clientCtor;
    const Ctor = clientCtor as NonNullable<typeof clientCtor>;
    this.client = new Ctor(address, grpc.credentials.createInsecure(), { 'grpc.enable_channelz': 0 });
  }

  pick(plan: RequestPlan, candidates: readonly Candidate[], health: HealthTracker): Promise<string | undefined> {
    const request: PickRequest = {
      requestId: plan.requestId,
      model: plan.model,
      attempt: plan.attempts.length + 1,
      candidates: candidates.map((c) => {
        const view = health.view(c.id);
        return {
          id: c.id,
          provider: c.route.provider.name,
          address: c.address ?? '',
          upstreamModel: c.route.upstreamModel,
          weight: c.weight,
          outstanding: view.outstanding,
          ewmaTtfbMs: view.ewmaTtfbMs ?? 0,
        };
      }),
      tried: plan.attempts.map((a) => a.candidate.id),
      body: plan.body?.raw ?? Buffer.alloc(0),
    };
    return new Promise((resolve) => {
      this.client.Pick(request, { deadline: Date.now() + this.timeoutMs }, (err, res) => {
        if (err) {
          const result = err.code === grpc.status.DEADLINE_EXCEEDED ? 'timeout' : 'error';
          endpointPickerTotal.inc({ result });
          this.logger.debug({ requestId: plan.requestId, reason: result, grpcCode: err.code }, 'endpoint picker failed');
          resolve(undefined);
          return;
        }
        const id = res?.id ?? '';
        const known = candidates.some((c) => c.id === id);
        endpointPickerTotal.inc({ result: known ? 'picked' : 'invalid' });
        resolve(known ? id : undefined);
      });
    });
  }

  close(): void {
    this.client.close();
  }
}

/** One picker client per (address, timeout), created on first use; for RouterDeps.picker. */
export function pickerPool(logger: Logger): (address: string, timeoutMs: number) => EndpointPicker {
  const clients = new Map<string, GrpcEndpointPicker>();
  return (address, timeoutMs) => {
    const key = `${address}|${timeoutMs}`;
    let client = clients.get(key);
    if (!client) {
      if (clients.size >= 16) {
        for (const c of clients.values()) c.close();
        clients.clear();
      }
      client = new GrpcEndpointPicker(address, timeoutMs, logger);
      clients.set(key, client);
    }
    return client;
  };
}
