// cnsim calibration filter: the smallest per-request work a proxy-wasm HTTP filter does.
// On request headers it reads one header (`:path`) and adds `x-cnsim-wasm: 1` to the request;
// on response headers it adds `x-cnsim-wasm: 1` to the response, so a test can see it ran.
// SDK: @solo-io/proxy-runtime (AssemblyScript proxy-wasm SDK, ABI 0.2.0).
export * from "@solo-io/proxy-runtime/proxy"; // the proxy_on_* exports, malloc, the ABI version marker
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context,
} from "@solo-io/proxy-runtime";

class CnsimRoot extends RootContext {
  // The SDK's RootContext.onConfigure (0.1.8) passes configuration_size where proxy_get_buffer_bytes wants a
  // pointer to the returned size, so the host writes out of bounds ("memory access out of bounds" in
  // proxy_on_configure, the plugin fails to load). This filter takes no configuration: accept it unread.
  onConfigure(configuration_size: u32): bool {
    return true;
  }

  createContext(context_id: u32): Context {
    return new CnsimFilter(context_id, this);
  }
}

class CnsimFilter extends Context {
  pathLength: i32 = 0;

  constructor(context_id: u32, root_context: CnsimRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    this.pathLength = stream_context.headers.request.get(":path").length;
    stream_context.headers.request.add("x-cnsim-wasm", "1");
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-cnsim-wasm", "1");
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new CnsimRoot(context_id); }, "cnsim");
