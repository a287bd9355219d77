/**
 * The resources users write (ModelProvider, ApiKey, the Secrets they reference, and the file-only
 * GatewayConfig). These are the *user-facing* types; the hot path never reads them, it reads the
 * Snapshot built from them (see snapshot.ts). The OpenAPI schemas in schema.ts describe the same
 * shapes and a unit test keeps the two in agreement.
 */

export const API_GROUP = 'tollgate.dev';
export const API_VERSION = 'tollgate.dev/v1alpha1';

/** Kubernetes-style object metadata (the part Tollgate uses). */
export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly generation?: number;
  readonly resourceVersion?: string;
  readonly uid?: string;
  readonly creationTimestamp?: string;
  readonly labels?: Readonly<Record<string, string>>;
}

/** Points at one key of a Secret in the resource's own namespace. */
export interface SecretKeyRef {
  readonly name: string;
  readonly key: string;
}

/** Supported upstream API styles. */
export type ProviderType = 'openai' | 'azure-openai' | 'openai-compatible' | 'anthropic' | 'aws-bedrock' | 'gemini' | 'gcp-vertex-ai';
export const PROVIDER_TYPES: readonly ProviderType[] = ['openai', 'azure-openai', 'openai-compatible', 'anthropic', 'aws-bedrock', 'gemini', 'gcp-vertex-ai'];

/** One model a provider serves. */
export interface ProviderModel {
  /** Name clients use (after mapping). */
  readonly name: string;
  /** Name sent upstream (Azure: the deployment). Defaults to `name`. */
  readonly upstreamModel?: string;
  /** Provider protection: caps for this model at this provider, across all keys and replicas. */
  readonly limits?: RateLimits;
  /** What this provider charges for the model (see docs/billing.md). */
  readonly pricing?: ModelPricing;
  /**
   * `max_tokens` sent upstream when the client gave neither max_tokens nor max_completion_tokens, for
   * provider APIs that require one (anthropic). Default 4096.
   */
  readonly maxTokens?: number;
  /**
   * Engines that write reasoning as `<think>…</think>` in the answer (DeepSeek-R1, QwQ/Qwen3 on vLLM
   * or SGLang): `extract` moves it to `reasoning_content`, `strip` drops it, `keep` (default) leaves it.
   */
  readonly reasoningTags?: 'extract' | 'strip' | 'keep';
  /** Request parameter rules for this model, applied to the body the provider gets (after translation). */
  readonly parameters?: ParameterRules;
}

/** Drop, rename or default request parameters (top-level body fields) for one model. */
export interface ParameterRules {
  /** Removed from the body. */
  readonly drop?: readonly string[];
  /** Moved to another name (kept as is when the new name is already set). */
  readonly rename?: Readonly<Record<string, string>>;
  /** Added when the body does not set them. */
  readonly defaults?: Readonly<Record<string, unknown>>;
}

/**
 * Prices per 1M tokens as decimal strings (at most 6 decimals), for example `input: "2.50"`.
 * Cached-input prices default to `input`, `reasoning` to `output`.
 */
export interface ModelPricing {
  /** ISO 4217 code; default the GatewayConfig's `pricing.currency` (USD). */
  readonly currency?: string;
  readonly input: string;
  readonly output: string;
  /** Prompt tokens served from the provider's cache. */
  readonly cachedInputRead?: string;
  /** Prompt tokens written into the provider's cache. */
  readonly cachedInputWrite?: string;
  /** Reasoning tokens, when the provider bills them apart from output. */
  readonly reasoning?: string;
}

/** A default price for the models (served or upstream name, wildcards allowed) whose provider sets none. */
export interface DefaultModelPricing extends ModelPricing {
  readonly model: string;
}

/** GatewayConfig.spec.pricing: the currency of every price and budget, and the default price table. */
export interface PricingSpec {
  /** Currency of budgets and of prices that name none. Default `USD`. */
  readonly currency?: string;
  /** First matching entry applies. */
  readonly models?: readonly DefaultModelPricing[];
}

/** Rolling-window limits (sliding windows, see docs/limits.md). */
export interface RateLimits {
  readonly requestsPerMinute?: number;
  readonly requestsPerDay?: number;
  readonly tokensPerMinute?: number;
  readonly tokensPerDay?: number;
}

/** Rate limits plus the calendar-month token budget. */
export interface BudgetLimits extends RateLimits {
  /** Tokens (prompt + completion) per calendar month in `monthTimeZone`. */
  readonly tokensPerMonth?: number;
  /** Money per calendar month in `monthTimeZone`, a decimal string in the gateway currency (`"500.00"`). */
  readonly costPerMonth?: string;
  /** Money per calendar day in `monthTimeZone`, a decimal string in the gateway currency. */
  readonly costPerDay?: string;
}

/** Extra limits for one model (after mapping) on a key; they apply in addition to the key's own. */
export interface ModelLimits extends BudgetLimits {
  /** Model name after mapping, or a wildcard pattern (`gpt-4*`). First matching entry applies. */
  readonly model: string;
}

/** What happens when a token budget runs out while a response is streaming. */
export type MidStreamPolicy = 'finish' | 'error';
export const MID_STREAM_POLICIES: readonly MidStreamPolicy[] = ['finish', 'error'];

/** Limits of one ApiKey (or account). */
export interface KeyLimits extends BudgetLimits {
  readonly perModel?: readonly ModelLimits[];
  /** IANA time zone in which calendar months start for tokensPerMonth. Default `UTC`. */
  readonly monthTimeZone?: string;
  /**
   * `finish` (default): a stream that is admitted always completes (bounded overshoot, see docs/limits.md).
   * `error`: the stream ends with an OpenAI-style error event as soon as the budget is exhausted.
   */
  readonly midStreamPolicy?: MidStreamPolicy;
  /** MCP tool calls (any server) in any rolling 60 s window. */
  readonly toolCallsPerMinute?: number;
  /** MCP tool calls (any server) in any rolling 24 h window. */
  readonly toolCallsPerDay?: number;
  /** MCP tool calls (any server) per calendar month in `monthTimeZone`. */
  readonly toolCallsPerMonth?: number;
}

export interface ModelProviderSpec {
  readonly type: ProviderType;
  /** Base URL, for example `https://api.openai.com/v1` or `http://vllm.ml:8000/v1`. */
  readonly endpoint: string;
  /** Credential sent upstream; optional for self-hosted engines without auth. */
  readonly credentialSecretRef?: SecretKeyRef;
  /** Azure OpenAI `api-version` query parameter; Anthropic `anthropic-version` header. */
  readonly apiVersion?: string;
  /** AWS region for SigV4 (aws-bedrock); default: from the endpoint host (bedrock-runtime.<region>.amazonaws.com). */
  readonly region?: string;
  /** Lower is preferred; providers of the same priority share traffic by weight. */
  readonly priority?: number;
  /** Relative share of traffic among providers of the same priority. */
  readonly weight?: number;
  readonly models: readonly ProviderModel[];
  /** Time to the first response byte of one attempt before failing over (default: Envoy's). */
  readonly firstByteTimeoutSeconds?: number;
  /** Self-hosted engine behind a Kubernetes Service: requests go to its ready endpoints. */
  readonly service?: ServiceRef;
}

/** A Service in the provider's namespace whose EndpointSlices list the engine's pods. */
export interface ServiceRef {
  readonly name: string;
  /** Port number of the endpoints (the target port, as listed in the EndpointSlices). */
  readonly port: number;
}

/** Balancing among providers (and endpoints) of the same priority. */
export type BalancingStrategy = 'weighted' | 'round-robin' | 'least-outstanding' | 'latency';
export const BALANCING_STRATEGIES: readonly BalancingStrategy[] = ['weighted', 'round-robin', 'least-outstanding', 'latency'];

/** Failover, backoff, circuit breaking and balancing (GatewayConfig.spec.resilience). */
export interface ResilienceSpec {
  readonly strategy?: BalancingStrategy;
  /** Upstream attempts per request, the first included. */
  readonly maxAttempts?: number;
  /** Exponential backoff with full jitter between attempts to the same provider. */
  readonly backoff?: { readonly baseMs?: number; readonly maxMs?: number };
  readonly circuitBreaker?: {
    /** Consecutive failures that take a provider/endpoint out. */
    readonly consecutiveFailures?: number;
    /** Also eject when this share (percent) of the last `window` attempts failed; 0 = off. */
    readonly failureRatePercent?: number;
    readonly window?: number;
    /** Attempts in the window before the failure rate counts. */
    readonly minRequests?: number;
    readonly cooldownSeconds?: number;
    /** Cool-down doubles on each failed probe, up to this. */
    readonly maxCooldownSeconds?: number;
    /** Longest Retry-After honoured when resting a target that answered 429. */
    readonly maxRetryAfterSeconds?: number;
    /**
     * Requests per second per target that may still go to a target that is out when no other
     * target can serve the model (last resort); 0 = hard-open: refuse at once until the cool-down ends.
     */
    readonly probeBudgetPerSecond?: number;
  };
  /** External endpoint picker (gRPC tollgate.picker.v1.EndpointPicker); built-in choice on timeout. */
  readonly endpointPicker?: { readonly address: string; readonly timeoutMs?: number };
}

export interface ApiKeySpec {
  /** `sha256:<64 hex>` of the key. Exactly one of keyHash and secretRef (none for an account). */
  readonly keyHash?: string;
  /** Secret holding the key in clear; Tollgate hashes it on load and never keeps the clear value. */
  readonly secretRef?: SecretKeyRef;
  readonly description?: string;
  /** Models this key may use, after mapping; wildcards allowed. Absent means all models. */
  readonly models?: readonly string[];
  /** Per-key model mapping, consulted before the global one. */
  readonly modelMappings?: Readonly<Record<string, string>>;
  readonly disabled?: boolean;
  /** RFC 3339 time after which the key is refused; absent means never. */
  readonly expiresAt?: string;
  /**
   * Name of the parent ApiKey (or account) in the same namespace. A request counts against this key
   * and every ancestor and is refused if any of them is over its limits.
   */
  readonly parent?: string;
  /** An account: a budget holder in the hierarchy with no key of its own (no keyHash, no secretRef). */
  readonly accountOnly?: boolean;
  readonly limits?: KeyLimits;
  /**
   * Client addresses (IPv4/IPv6 CIDRs or single addresses) this key may be used from; absent means
   * anywhere. Every ancestor's list applies too (an intersection). See docs/safety.md.
   */
  readonly allowedCidrs?: readonly string[];
  /** Guardrails (GatewayConfig.spec.guardrails names) for this key and every key below it. */
  readonly guardrails?: readonly string[];
  /**
   * Hostnames (exact or `*.example.com`) this key may be used on; elsewhere it is refused as if it
   * did not exist (401). Absent means any host. See docs/safety.md.
   */
  readonly hosts?: readonly string[];
  /** MCP servers and tools this key may use. Absent: no MCP server at all. */
  readonly mcp?: KeyMcpAccess;
}

/** Which MCP servers and tools a key may use. */
export interface KeyMcpAccess {
  /** MCPServer names in the key's namespace; `*` wildcards allowed (`*` alone = every server). */
  readonly servers: readonly string[];
  /** Tool patterns in `server__tool` form, `*` wildcards allowed. Absent: every tool of the allowed servers. */
  readonly tools?: readonly string[];
}

/** MCP transports an upstream MCP server may speak. */
export type McpTransport = 'streamable-http' | 'sse';
export const MCP_TRANSPORTS: readonly McpTransport[] = ['streamable-http', 'sse'];

/** Credential sent to an upstream MCP server (and to httpTools). */
export interface McpCredential {
  readonly secretRef: SecretKeyRef;
  /** Header carrying the value as is; absent = `Authorization: Bearer <value>`. */
  readonly header?: string;
}

/** Tool include/exclude filters (exclude wins). */
export interface McpToolFilter {
  /** Exact tool names to publish; with includeRegex, a tool must match one of the two. */
  readonly include?: readonly string[];
  readonly includeRegex?: readonly string[];
  readonly exclude?: readonly string[];
  readonly excludeRegex?: readonly string[];
}

export type HttpToolMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export const HTTP_TOOL_METHODS: readonly HttpToolMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** A plain HTTP API exposed as an MCP tool. */
export interface HttpToolSpec {
  readonly name: string;
  readonly description?: string;
  /** JSON Schema of the tool's arguments (an object schema). */
  readonly inputSchema?: Readonly<Record<string, unknown>>;
  readonly method?: HttpToolMethod;
  /** URL template: `{{arg}}` is replaced by the URI-encoded argument. */
  readonly url: string;
  /** Header templates: `{{arg}}` is replaced by the argument as text. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Body template: `{{arg}}` is replaced by the argument as JSON. Absent: POST/PUT/PATCH send the arguments as JSON. */
  readonly body?: string;
  /** How the HTTP response becomes the tool result. */
  readonly response?: { readonly format?: 'text' | 'json' };
}

/** Service upstream (Kubernetes mode): `http://<name>.<namespace>.svc:<port><path>`. */
export interface McpServiceRef {
  readonly name: string;
  readonly port: number;
  readonly path?: string;
}

export interface MCPServerSpec {
  /** Upstream MCP endpoint URL. */
  readonly url?: string;
  /** Upstream as a Service in the MCPServer's namespace (Kubernetes mode). */
  readonly service?: McpServiceRef;
  /** Default `streamable-http`; `sse` for the older HTTP+SSE transport. */
  readonly transport?: McpTransport;
  readonly credential?: McpCredential;
  /**
   * Time one upstream call (list or tool call) may take. Default 30. For a tool call it is the time
   * the upstream may stay silent: each progress notification starts it again.
   */
  readonly timeoutSeconds?: number;
  /**
   * Absolute cap on one tool call however much progress it reports. Default 600, or timeoutSeconds
   * when that is larger; never below timeoutSeconds.
   */
  readonly maxTotalTimeoutSeconds?: number;
  readonly tools?: McpToolFilter;
  readonly httpTools?: readonly HttpToolSpec[];
  readonly description?: string;
  readonly owner?: string;
  readonly tags?: readonly string[];
}

export interface MCPServer {
  readonly apiVersion: typeof API_VERSION;
  readonly kind: 'MCPServer';
  readonly metadata: ObjectMeta;
  readonly spec: MCPServerSpec;
  readonly status?: MCPServerStatus;
}

export interface MCPServerStatus extends ResourceStatus {
  /** Tools published (after filters) when last discovered. */
  readonly tools?: number;
}

/** Condition as in Kubernetes status. */
export interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
  readonly observedGeneration?: number;
}

export interface ResourceStatus {
  readonly observedGeneration?: number;
  readonly conditions?: readonly Condition[];
}

export interface ModelProvider {
  readonly apiVersion: typeof API_VERSION;
  readonly kind: 'ModelProvider';
  readonly metadata: ObjectMeta;
  readonly spec: ModelProviderSpec;
  readonly status?: ResourceStatus;
}

/** Month-to-date usage of a key (including its descendants' usage for accounts is not summed here). */
export interface UsageStatus {
  /** `YYYY-MM` in the key's month time zone. */
  readonly month: string;
  readonly requests: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly totalTokens: number;
  /** Month-to-date cost, a decimal string of the currency (`"12.345678"`). */
  readonly cost?: string;
  readonly currency?: string;
  readonly updatedAt: string;
}

export interface ApiKeyStatus extends ResourceStatus {
  /** `.root.child.self.`: the key's place in the account hierarchy. */
  readonly lineage?: string;
  readonly usage?: UsageStatus;
}

export interface ApiKey {
  readonly apiVersion: typeof API_VERSION;
  readonly kind: 'ApiKey';
  readonly metadata: ObjectMeta;
  readonly spec: ApiKeySpec;
  readonly status?: ApiKeyStatus;
}

/** Gateway-wide settings. Not a CRD: a file (a ConfigMap in Kubernetes). */
export interface GatewayConfigSpec {
  /** Global model mapping, consulted after the per-key one. */
  readonly modelMappings?: Readonly<Record<string, string>>;
  readonly resilience?: ResilienceSpec;
  /** Content guardrails, referenced by ApiKeys (or `global`); see docs/safety.md. */
  readonly guardrails?: readonly GuardrailSpec[];
  readonly pricing?: PricingSpec;
  /** Tenants by domain: per-host model mappings and guardrails; see docs/safety.md. */
  readonly tenants?: readonly TenantSpec[];
}

/** One tenant: the hostnames it is served on and its own defaults. */
export interface TenantSpec {
  readonly name: string;
  /** Exact hostnames or `*.example.com`. */
  readonly hosts: readonly string[];
  /** Replaces the global model mapping on these hosts. */
  readonly modelMappings?: Readonly<Record<string, string>>;
  /** Guardrails (names) for every request on these hosts. */
  readonly guardrails?: readonly string[];
}

/** What a guardrail check does when it matches. */
export type GuardrailAction = 'block' | 'mask' | 'log';
export const GUARDRAIL_ACTIONS: readonly GuardrailAction[] = ['block', 'mask', 'log'];

/** Built-in PII detectors. */
export type PiiKind = 'email' | 'phone' | 'paymentCard' | 'iban' | 'ipAddress' | 'cnResidentId' | 'usSsn';
export const PII_KINDS: readonly PiiKind[] = ['email', 'phone', 'paymentCard', 'iban', 'ipAddress', 'cnResidentId', 'usSsn'];

/** A user regular expression. */
export interface GuardrailPattern {
  /** Rule name in logs and metrics. */
  readonly name: string;
  /** JavaScript regular expression, matched against normalised (NFKC, lower-case) text. */
  readonly regex: string;
  readonly action: GuardrailAction;
  /** Longest text the pattern can match, for the streaming window (default 64). */
  readonly maxLength?: number;
}

/** One guardrail: checks on request text and on the response, each with an action. */
export interface GuardrailSpec {
  readonly name: string;
  /** Applies to every key (else only to keys that reference it, and their descendants). */
  readonly global?: boolean;
  /** Only for these models (after mapping; wildcards). Absent: all models. */
  readonly models?: readonly string[];
  /** Check the request (every message's text), default true. */
  readonly request?: boolean;
  /** Check the response (streamed or not), default true. */
  readonly response?: boolean;
  /** Replacement for keyword and pattern matches (PII use `[EMAIL]`, `[PHONE]`...). Default `****`. */
  readonly mask?: string;
  readonly keywords?: { readonly action: GuardrailAction; readonly words: readonly string[] };
  readonly patterns?: readonly GuardrailPattern[];
  readonly pii?: Readonly<Partial<Record<PiiKind, GuardrailAction>>>;
  /** External moderation of the request text (an OpenAI-moderation-compatible endpoint). */
  readonly moderation?: ModerationSpec;
}

/** An OpenAI-moderation-compatible endpoint (`POST {model, input: [texts]}` -> `{results: [{flagged}]}`). */
export interface ModerationSpec {
  /** Full URL, for example https://api.openai.com/v1/moderations. */
  readonly endpoint: string;
  readonly model?: string;
  /** Environment variable of the Tollgate container holding the bearer token (from a Secret). */
  readonly credentialEnv?: string;
  /** Time allowed for the answer (default 2000 ms). */
  readonly timeoutMs?: number;
  /** When the hook fails or times out: `closed` refuses the request (503), `open` lets it through. Default closed. */
  readonly failureMode?: 'open' | 'closed';
  /**
   * Also send answers to the hook: `none` (default) or `nonStreamed` (a non-streamed answer is held
   * until the hook has judged it). Streamed answers cannot be held for the hook: under `nonStreamed`,
   * a streamed request is refused with `failureMode: closed` and streamed unmoderated (logged) with `open`.
   */
  readonly responses?: 'none' | 'nonStreamed';
}

export interface GatewayConfig {
  readonly apiVersion: typeof API_VERSION;
  readonly kind: 'GatewayConfig';
  readonly metadata: ObjectMeta;
  readonly spec: GatewayConfigSpec;
}

/** The part of a core/v1 Secret Tollgate reads. Values are already decoded to text. */
export interface SecretData {
  readonly namespace: string;
  readonly name: string;
  readonly data: ReadonlyMap<string, string>;
}

/** Everything a config source hands to the snapshot builder. */
export interface ResourceSet {
  readonly providers: readonly ModelProvider[];
  readonly apiKeys: readonly ApiKey[];
  readonly secrets: readonly SecretData[];
  readonly gatewayConfig?: GatewayConfigSpec;
  /** MCP servers (absent = none). */
  readonly mcpServers?: readonly MCPServer[];
  /** Prompt templates (absent = none). */
  readonly promptTemplates?: readonly PromptTemplate[];
}

/** Roles a prompt template message may have. */
export type TemplateRole = 'system' | 'developer' | 'user' | 'assistant';

/** One chat message of a prompt template; `content` is a Liquid template. */
export interface TemplateMessage {
  readonly role: TemplateRole;
  readonly content: string;
}

/** A named, versioned prompt template served at POST /v1/templates/<name>. */
export interface PromptTemplateSpec {
  /** Free-form version label (shown by kubectl get). */
  readonly version?: string;
  /** The model the rendered chat completion asks for (mapping and the key's allow-list apply). */
  readonly model: string;
  readonly messages: readonly TemplateMessage[];
  /** JSON Schema of the input object (type: object). Absent: any object. */
  readonly variables?: Readonly<Record<string, unknown>>;
  /** Chat parameters sent with every rendered request (temperature, max_tokens, ...). */
  readonly parameters?: Readonly<Record<string, unknown>>;
  readonly description?: string;
}

export interface PromptTemplate {
  readonly apiVersion: typeof API_VERSION;
  readonly kind: 'PromptTemplate';
  readonly metadata: ObjectMeta;
  readonly spec: PromptTemplateSpec;
  readonly status?: ResourceStatus;
}

/** `namespace/name`, the identity used in logs, metrics and indexes. */
export function qualifiedName(meta: ObjectMeta): string {
  return `${meta.namespace ?? 'default'}/${meta.name}`;
}
