// Everything libparley offers.
#pragma once

#include "parley/backoff.h"
#include "parley/chat_sequencer.h"
#include "parley/client.h"
#include "parley/cursor_file.h"
#include "parley/error.h"
#include "parley/http_api.h"
#include "parley/types.h"
#include "parley/update_sequencer.h"
#include "parley/url.h"
#include "parley/wire.h"
