// Everything a plugin may include, in one header.
#pragma once

#include "loom/attention.h"
#include "loom/block_hash.h"
#include "loom/drafter.h"
#include "loom/engine_info.h"
#include "loom/engine_services.h"
#include "loom/error.h"
#include "loom/evictor.h"
#include "loom/kv_allocator.h"
#include "loom/kv_connector.h"
#include "loom/parallel.h"
#include "loom/plugin.h"
#include "loom/plugin_config.h"
#include "loom/scheduler.h"
#include "loom/tensor.h"
#include "loom/types.h"
