#include "asciicast/emulated_terminal.h"

#include <vterm.h>

namespace castgate::asciicast {

int EmulatedTerminal::forward_property(int prop, void* value, void* self) {
  auto* t = static_cast<EmulatedTerminal*>(self);
  return t->on_property_(prop, value, t->owner_);
}

EmulatedTerminal::EmulatedTerminal(int rows, int cols, PropertyHandler on_property, void* owner)
    : on_property_(on_property), owner_(owner), vt_(vterm_new(rows, cols)) {
  vterm_set_utf8(vt_, 1);
  vterm_output_set_callback(
      vt_, [](const char*, size_t, void*) {}, nullptr);
  screen_ = vterm_obtain_screen(vt_);
  static const VTermScreenCallbacks callbacks = [] {
    VTermScreenCallbacks c{};
    c.settermprop = [](VTermProp prop, VTermValue* val, void* self) {
      return forward_property(prop, val, self);
    };
    return c;
  }();
  vterm_screen_set_callbacks(screen_, &callbacks, this);
  vterm_screen_enable_altscreen(screen_, 1);
  vterm_screen_reset(screen_, 1);
}

EmulatedTerminal::~EmulatedTerminal() {
  vterm_free(vt_);
}

}  // namespace castgate::asciicast
