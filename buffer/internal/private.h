// buffer/internal/ is private to the sluice_buffer target: the schema, the
// SQL, the write path, migrations, the integrity check and quarantine live
// here and nowhere else. Other code uses the public headers of buffer/
// (ring.h, codec.h, history.h, inspect.h); only buffer/ itself and its own
// tests (tests/buffer) define SLUICE_BUFFER_INTERNAL and may include these.
#pragma once

#ifndef SLUICE_BUFFER_INTERNAL
#error "buffer/internal/ is private to sluice_buffer: use buffer/ring.h, history.h or inspect.h"
#endif
