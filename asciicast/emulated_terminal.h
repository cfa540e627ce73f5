// A libvterm terminal set up the one way castgate uses it, in the recorder (TerminalTracker) and
// in the player (ScreenView): UTF-8, the alternate screen enabled, answers to the recorded
// program's queries (device attributes, cursor position) dropped, property changes (the
// alternate screen, cursor visibility, ...) handed to its owner.
#pragma once

struct VTerm;
struct VTermScreen;

namespace castgate::asciicast {

class EmulatedTerminal {
 public:
  // on_property(prop, value, owner): libvterm's settermprop (VTermProp, VTermValue*) for `owner`.
  using PropertyHandler = int (*)(int prop, void* value, void* owner);

  EmulatedTerminal(int rows, int cols, PropertyHandler on_property, void* owner);
  ~EmulatedTerminal();
  EmulatedTerminal(const EmulatedTerminal&) = delete;
  EmulatedTerminal& operator=(const EmulatedTerminal&) = delete;

  VTerm* vt() const { return vt_; }
  VTermScreen* screen() const { return screen_; }  // owned by vt()

 private:
  static int forward_property(int prop, void* value, void* self);

  PropertyHandler on_property_;
  void* owner_;
  VTerm* vt_;
  VTermScreen* screen_;
};

}  // namespace castgate::asciicast
