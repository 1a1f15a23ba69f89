"""The objective-zoo task package: data commands for the zoo's weight and score transforms, and the
``mmsft study sft-objectives`` comparison study."""
